// Plug a custom algorithm into the trainer: "best-of-k filtered imitation" — sample k responses per prompt, keep the
// one with the highest env return, and take a supervised step toward it. Registered under a name, it trains through
// the same loop as PPO: metrics.jsonl, TensorBoard, checkpoints, resume, gold evaluation, `rlhfgym compare` cells.
// Run: dotnet run --project examples/CustomAlgorithm -c Release (interrupt it and run again: it resumes).
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Training;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

PhraseWorldPlugin.Register(); // the built-in world: its env ids and its gold judge
AlgorithmRegistry.Register("best-of-k", c => new BestOfK(c.Policy, k: 4, c.Env.PadId));

using var env = EnvRegistry.Make("PhraseWorld-Segment-v0", numEnvs: 32, progress: Console.Error.WriteLine);
string sft = Path.Combine(env.Bundle.Directory, EnvBundle.ReferenceDir);
var trainer = new Trainer(env, sft, JudgePolicyEvaluator.ForBundle(env.Bundle, env.Spec.MaxNewTokens, CPU), CPU, Console.Error.WriteLine);
string runDir = Path.Combine(Path.GetTempPath(), "rlhfgym-example-best-of-k");
var options = new TrainerOptions { Algorithm = "best-of-k", Iterations = 20, EvalEvery = 10 };
var summary = trainer.Run(runDir, options, resume: RunCheckpoint.Find(runDir) is not null);

foreach (var row in MetricsLog.Read(runDir))
    Console.WriteLine($"iteration {row["iteration"],2}: env return {row["task_reward"],8}  best of k {row["best_return"],8}  loss {row["policy_loss"]}");
foreach (var key in new[] { "gold_score_sft", "gold_score_policy", "win_rate_vs_sft" })
    Console.WriteLine($"{key,-20} {summary.Figures[key]}");

/// <summary>The whole algorithm: group by prompt, keep the best response, maximise its log-likelihood.</summary>
sealed class BestOfK(PolicyModel policy, int k, int padId) : IAlgorithm
{
    private readonly TorchSharp.Modules.AdamW _optimizer = new OptimizerSettings { LearningRate = 1e-4 }.CreateOptimizer(policy.Model.parameters());
    public string Name => "best-of-k";
    public int GroupSize => k;

    public UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations)
    {
        var best = rollout.Episodes.GroupBy(e => e.Group).Select(g => g.MaxBy(e => e.TaskRewards.Sum())!).ToList();
        using var scope = NewDisposeScope();
        using var batch = new SequenceBatch(best.Select(e => (e.Prompt, e.Response)).ToList(), padId, policy.Model.Device);
        var mask = batch.ResponseTargetMask();
        policy.Model.train();
        _optimizer.zero_grad();
        var loss = -(policy.NextTokenLogProbs(batch) * mask).sum() / mask.sum();
        loss.backward();
        _optimizer.step();
        policy.Model.eval();
        // Well-known figures under their names, plus one of its own: the mean return of the kept responses.
        return new UpdateStats(new Dictionary<string, double>
        {
            [UpdateStats.PolicyLoss] = loss.item<float>(),
            ["best_return"] = best.Average(e => e.TaskRewards.Sum()),
        });
    }

    // A resumed run must continue with the optimizer's moments, as the built-ins do.
    public void SaveState(string directory) => _optimizer.save_state_dict(Path.Combine(directory, "best_of_k_optimizer.bin"));
    public void LoadState(string directory) => _optimizer.load_state_dict(Path.Combine(directory, "best_of_k_optimizer.bin"));
    public void Dispose() => _optimizer.Dispose();
}
