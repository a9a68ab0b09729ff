using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>The first step of the critic-free algorithms: the rollout scored by the policy that collected it.</summary>
internal static class RolloutScoring
{
    /// <summary>log π_old of every response token, and the policy's mean next-token entropy over them (no gradient).</summary>
    public static (float[][] OldLogProbs, double Entropy) Score(PolicyModel policy, IReadOnlyList<EpisodeSample> episodes, int padId)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var all = new SequenceTensors(episodes, padId, policy.Model.Device);
        policy.Model.eval();
        var oldLogProbs = all.Take(policy.NextTokenLogProbs(all.Batch));
        double entropy = ((policy.NextTokenEntropy(all.Batch) * all.Mask).sum() / all.Mask.sum()).item<float>();
        return (oldLogProbs, entropy);
    }
}
