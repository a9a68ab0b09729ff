using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Core;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Training;

/// <summary>What a run ended with.</summary>
public sealed record TrainingSummary(JsonObject Figures, string RunDir);

/// <summary>
/// One trainer loop for every algorithm: iterations of collect (one episode per sub-env) → update → evaluate →
/// checkpoint. It sees only <see cref="IVectorEnv"/>, so the same loop trains in-process or against a remote env; the
/// algorithm comes from <see cref="AlgorithmRegistry"/> by name and the evaluation is injected.
/// Every iteration's randomness is derived from (seed, iteration), so a run resumed from a checkpoint continues
/// exactly as the uninterrupted run would have.
/// </summary>
public sealed class Trainer
{
    public const string RunFile = "run.json", FinalPolicyDir = "policy", SummaryFile = "summary.json";

    private readonly IVectorEnv _env;
    private readonly string _initDir;
    private readonly IPolicyEvaluator? _evaluator;
    private readonly Device _device;
    private readonly Action<string> _progress;

    /// <param name="initDir">The SFT model the policy and critic start from (for a bundle: its reference/).</param>
    /// <param name="evaluator">Held-out evaluation (e.g. <see cref="JudgePolicyEvaluator"/> for an env with a judge);
    /// null: none.</param>
    public Trainer(IVectorEnv env, string initDir, IPolicyEvaluator? evaluator, Device device, Action<string>? progress = null)
    {
        _env = env;
        _initDir = initDir;
        _evaluator = evaluator;
        _device = device;
        _progress = progress ?? (_ => { });
    }

    /// <param name="stopAfter">Stop after this iteration (to simulate an interruption in tests); null runs to the end.</param>
    public TrainingSummary Run(string runDir, TrainerOptions o, bool resume, int? stopAfter = null)
    {
        if (resume) RequireResumableAlgorithm(runDir, o.Algorithm);
        o.Validate();
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(runDir);
        var runJson = RunDescription(o);
        var found = RunCheckpoint.Find(runDir);
        if (resume)
        {
            if (!File.Exists(Path.Combine(runDir, RunFile))) throw new DirectoryNotFoundException($"{runDir}: no run to resume ({RunFile} missing)");
            var previous = JsonFile.ReadObject(Path.Combine(runDir, RunFile));
            foreach (var key in new[] { "algorithm", "seed", "iterations", "env" })
                if (previous[key]?.ToJsonString() != runJson[key]?.ToJsonString())
                    throw new InvalidOperationException($"{Path.Combine(runDir, RunFile)}: '{key}' is {previous[key]?.ToJsonString()}, this run asks for {runJson[key]?.ToJsonString()}");
        }
        else
        {
            if (found is not null) throw new InvalidOperationException($"{runDir} already holds a run with a checkpoint: pass --resume to continue it, or choose another --out");
            AtomicFile.WriteAllText(Path.Combine(runDir, RunFile), runJson.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }

        using var policy = new PolicyModel(LoadInit(), o.Temperature, _env.Spec.NumEnvs);
        using var algorithm = AlgorithmRegistry.Create(o.Algorithm, new AlgorithmContext(policy, _env.Spec, _initDir, _device, o));
        var kl = new KlController(o.KlCoef, o.KlTarget);
        int start = 1;
        if (resume && found is { } ck)
        {
            var (weights, _) = ModelCheckpoint.Load(Path.Combine(ck.Path, RunCheckpoint.PolicyDir), _device);
            using (weights) CopyInto(policy.Model, weights);
            algorithm.LoadState(ck.Path);
            kl.Restore(ck.KlCoef);
            start = ck.Iteration + 1;
            _progress($"resuming {runDir} after iteration {ck.Iteration}");
        }
        if (resume) RecordResume(Path.Combine(runDir, RunFile), start - 1);
        var metrics = new MetricsLog(runDir, start - 1);
        long envSteps = 0;
        for (int iteration = start; iteration <= o.Iterations; iteration++)
        {
            using var sampler = new Sampler(o.Seed * 31 + iteration, o.Temperature, device: _device);
            var rollout = RolloutCollector.Collect(_env, policy, sampler, o.Seed * 7919 + iteration, algorithm.GroupSize);
            envSteps += rollout.EnvSteps;
            var update = Stopwatch.StartNew();
            var stats = algorithm.Update(rollout, kl.Coef, iteration, o.Iterations);
            double updateSeconds = update.Elapsed.TotalSeconds;
            // An algorithm without a KL figure leaves β where it is.
            if (double.IsFinite(stats[UpdateStats.Kl])) kl.Update(stats[UpdateStats.Kl], rollout.Episodes.Count);
            var row = IterationMetrics(iteration, rollout, stats, kl.Coef, updateSeconds);
            if (_evaluator is not null && (iteration % o.EvalEvery == 0 || iteration == o.Iterations))
                foreach (var (k, v) in _evaluator.Evaluate(policy.Model, o.EvalSamplesPerPrompt, o.Seed)) row[k] = v?.DeepClone();
            metrics.Write(row);
            _progress($"[{o.Algorithm} {iteration}/{o.Iterations}] reward {row["task_reward"]} kl {row["kl"]} len {row["response_length"]} gold {row["gold_score"]}");
            if (iteration % o.CheckpointEvery == 0 || iteration == o.Iterations || iteration == stopAfter) RunCheckpoint.Save(runDir, iteration, kl.Coef, policy.Model, algorithm);
            if (stopAfter is { } stop && iteration >= stop && iteration < o.Iterations)
                return new TrainingSummary(new JsonObject { ["stopped_after"] = iteration }, runDir);
        }

        ModelCheckpoint.Save(Path.Combine(runDir, FinalPolicyDir), policy.Model, metadata: new Dictionary<string, string> { ["kind"] = "policy" });
        var summary = new JsonObject
        {
            ["run"] = Path.GetFullPath(runDir),
            ["algorithm"] = o.Algorithm,
            ["env"] = _env.Spec.Id,
            ["seed"] = o.Seed,
            ["iterations"] = o.Iterations,
            ["kl"] = MetricsLog.Read(runDir).LastOrDefault()?["kl"]?.DeepClone(),
            ["kl_coef"] = kl.Coef,
        };
        if (_evaluator is not null) foreach (var (k, v) in _evaluator.Evaluate(policy.Model, o.EvalSamplesPerPrompt * 2, o.Seed + 1)) summary[k] = v?.DeepClone();
        summary["wall_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        AtomicFile.WriteAllText(Path.Combine(runDir, SummaryFile), summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return new TrainingSummary(summary, runDir);
    }

    /// <summary>
    /// Before resuming: when <paramref name="algorithm"/> is not registered but the run recorded the plug-in assembly
    /// it came from, an error that names that assembly (rather than only listing the registered algorithms).
    /// </summary>
    public static void RequireResumableAlgorithm(string runDir, string algorithm)
    {
        string runFile = Path.Combine(runDir, RunFile);
        if (!AlgorithmRegistry.Contains(algorithm) && File.Exists(runFile) && JsonFile.ReadObject(runFile)["algorithm_assembly"]?.GetValue<string>() is { } assembly)
            throw new ArgumentException($"algorithm '{algorithm}' is not registered; the run in {runDir} used it from {assembly}: load that assembly (--algorithm-assembly) to resume");
    }

    private JsonObject RunDescription(TrainerOptions o) => new()
    {
        ["version"] = 1,
        ["algorithm"] = o.Algorithm,
        // An algorithm from a plugin assembly: where it came from, so a resume can say what to load.
        ["algorithm_assembly"] = AlgorithmRegistry.AssemblyOf(o.Algorithm) is var a && a != typeof(Trainer).Assembly ? a.Location : null,
        ["seed"] = o.Seed,
        ["iterations"] = o.Iterations,
        ["env"] = _env.Spec.Id,
        ["num_envs"] = _env.Spec.NumEnvs,
        ["init"] = Path.GetFullPath(_initDir),
        ["options"] = JsonSerializer.SerializeToNode(o, new JsonSerializerOptions { IncludeFields = true }),
        // What trained it: the same seed on another machine or MKL branch gives other figures (docs/env.md).
        ["machine"] = RuntimeInfo.Machine(_device),
    };

    // Each resume appends where it picked up and what it ran on to run.json's `resumes`: the iterations after it were
    // trained there, and another machine or MKL branch gives other figures from the same seed.
    private void RecordResume(string runFile, int afterIteration)
    {
        var run = JsonFile.ReadObject(runFile);
        if (run["resumes"] is not JsonArray resumes) run["resumes"] = resumes = new JsonArray();
        resumes.Add(new JsonObject { ["after_iteration"] = afterIteration, ["machine"] = RuntimeInfo.Machine(_device) });
        AtomicFile.WriteAllText(runFile, run.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private CausalTransformer LoadInit() => ModelCheckpoint.LoadFor(_initDir, _env.Spec.VocabSize, $"the env {_env.Spec.Id}", _device);

    private static void CopyInto(CausalTransformer target, CausalTransformer source)
    {
        using var _ = no_grad();
        var src = source.state_dict();
        foreach (var (k, v) in target.state_dict()) v.copy_(src[k]);
    }

    // The row's keys and their order are part of metrics.jsonl's format: the loop's figures and the well-known
    // update figures in a fixed order, then whatever else the algorithm reported. Non-finite figures are left out.
    private static JsonObject IterationMetrics(int iteration, Rollout rollout, UpdateStats s, double klCoef, double updateSeconds)
    {
        double Round(double v) => double.IsFinite(v) ? Math.Round(v, 5) : double.NaN;
        var row = new JsonObject { ["iteration"] = iteration, ["task_reward"] = Round(rollout.MeanTaskReturn) };
        void Figure(string name)
        {
            if (double.IsFinite(s[name])) row[name] = Round(s[name]);
        }
        Figure(UpdateStats.ShapedReward);
        Figure(UpdateStats.Kl);
        row["kl_coef"] = Round(klCoef);
        Figure(UpdateStats.PolicyEntropy);
        Figure(UpdateStats.PolicyLoss);
        row["response_length"] = Round(rollout.MeanLength);
        row["eos_rate"] = Round(rollout.EosRate);
        row["rollout_tokens_per_s"] = Round(rollout.Episodes.Sum(e => e.Response.Length) / rollout.Seconds);
        row["env_time_share"] = Round(rollout.EnvSeconds / (rollout.Seconds + updateSeconds));
        if (rollout.DroppedEpisodes > 0)
        {
            // A sharded env lost a server: these episodes were left out of the update.
            row["lost_episodes"] = rollout.LostEpisodes;
            row["dropped_episodes"] = rollout.DroppedEpisodes;
        }
        row["update_seconds"] = Round(updateSeconds);
        Figure(UpdateStats.ValueLoss);
        Figure(UpdateStats.ApproxKl);
        Figure(UpdateStats.ClipFraction);
        Figure(UpdateStats.ExplainedVariance);
        if (rollout.MeanGold is { } gold) row["rollout_gold"] = Round(gold);
        foreach (var name in s.Figures.Keys.Except(UpdateStats.WellKnown))
        {
            if (row.ContainsKey(name)) throw new InvalidOperationException($"the algorithm reported a figure '{name}', a name the trainer writes itself");
            Figure(name);
        }
        return row;
    }
}
