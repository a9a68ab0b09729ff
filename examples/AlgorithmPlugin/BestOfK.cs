// An algorithm written outside the library: "best-of-k filtered imitation". Sample k responses per prompt, keep the one
// with the highest env return, take a supervised step toward it. Its plugin class registers it when the assembly is
// loaded, so the CLI trains it like a built-in (metrics.jsonl with its own figure, TensorBoard, checkpoints, resume,
// gold evaluation, compare cells):
//   dotnet build examples/AlgorithmPlugin -c Release
//   rlhfgym train --algorithm-assembly examples/AlgorithmPlugin/bin/Release/net10.0/AlgorithmPlugin.dll \
//       --agent best-of-k --algorithm-option k=4 --env PhraseWorld-Segment-v0 --out runs/best-of-k
// examples/CustomAlgorithm uses the same class in-process.
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Training;
using static TorchSharp.torch;

namespace RlhfGym.Examples.AlgorithmPlugin;

/// <summary>Registers best-of-k when the assembly is loaded (`--algorithm-assembly`); k comes from `--algorithm-option k=N` (default 4).</summary>
public sealed class BestOfKPlugin : IAlgorithmPlugin
{
    public const string Name = "best-of-k";

    public void Register() => AlgorithmRegistry.Register(Name, c =>
    {
        int k = c.Options.AlgorithmOptions.TryGetValue("k", out var text) ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : 4;
        if (k < 2) throw new ArgumentOutOfRangeException("k", k, "best-of-k needs k >= 2 responses per prompt");
        return new BestOfK(c.Policy, k, c.Env.PadId, Name);
    });
}

/// <summary>The whole algorithm: group by prompt, keep the best response, maximise its log-likelihood.</summary>
public sealed class BestOfK(PolicyModel policy, int k, int padId, string name, double learningRate = 1e-4) : IAlgorithm
{
    private readonly TorchSharp.Modules.AdamW _optimizer = new OptimizerSettings { LearningRate = learningRate }.CreateOptimizer(policy.Model.parameters());
    public string Name => name;
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
