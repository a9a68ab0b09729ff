// Plug a custom algorithm into the same rollout machinery: "best-of-k filtered imitation" — sample k responses per
// prompt, keep the one with the highest env return, and take a supervised step toward it.
// Run: dotnet run --project examples/CustomAlgorithm -c Release
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using static TorchSharp.torch;

using var env = EnvRegistry.Make("PhraseWorld-Segment-v0", numEnvs: 32, progress: Console.Error.WriteLine);
var (model, _) = ModelCheckpoint.Load(Path.Combine(env.Bundle.Directory, EnvBundle.ReferenceDir));
using var policy = new PolicyModel(model, temperature: 1.0, maxBatch: 32);
using var algorithm = new BestOfK(policy, k: 4, padId: env.Spec.PadId);

for (int iteration = 1; iteration <= 20; iteration++)
{
    using var sampler = new Sampler(seed: iteration);
    var rollout = RolloutCollector.Collect(env, policy, sampler, seed: iteration, groupSize: algorithm.GroupSize);
    var stats = algorithm.Update(rollout, klCoef: 0, iteration, totalIterations: 20);
    Console.WriteLine($"iteration {iteration,2}: env return {rollout.MeanTaskReturn,6:F3}  gold {rollout.MeanGold,6:F3}  loss {stats[UpdateStats.PolicyLoss]:F3}");
}

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
        return new UpdateStats(new Dictionary<string, double> { [UpdateStats.PolicyLoss] = loss.item<float>() });
    }

    public void SaveState(string directory) { }
    public void LoadState(string directory) { }
    public void Dispose() => _optimizer.Dispose();
}
