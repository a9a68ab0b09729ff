using RlhfGym.Agents.Rollouts;

namespace RlhfGym.Agents.Algorithms;

/// <summary>A rollout's KL-shaped rewards R_t per episode and token, and its KL figure.</summary>
/// <param name="Rewards">R_t = r_t − β(log π_old(y_t) − log π_ref(y_t)), per episode and response token.</param>
/// <param name="Kl">Mean over episodes of Σ_t (log π_old − log π_ref): the <see cref="UpdateStats.Kl"/> figure.</param>
public sealed record KlShapedRewards(double[][] Rewards, double Kl);

/// <summary>
/// The KL shaping every algorithm learns from (method.md §4): R_t = r_t − β(log π_old − log π_ref), with the env's
/// per-token task reward r_t and its log π_ref, so an agent needs no copy of the reference model.
/// </summary>
public static class KlShaping
{
    /// <param name="oldLogProbs">log π_old per episode and response token (the policy that collected the rollout).</param>
    /// <param name="sumKlBackward">
    /// Sum the KL figure from each episode's last token back to its first. Only the floating-point order of that one
    /// sum depends on it: REINFORCE has always summed this way (it walks episodes backwards for reward-to-go), and
    /// keeping the order keeps its logged figures bit-identical to earlier runs.
    /// </param>
    public static KlShapedRewards Shape(IReadOnlyList<EpisodeSample> episodes, float[][] oldLogProbs, double klCoef, bool sumKlBackward = false)
    {
        if (oldLogProbs.Length != episodes.Count) throw new ArgumentException($"{episodes.Count} episodes but log-probs for {oldLogProbs.Length}");
        var rewards = new double[episodes.Count][];
        double klSum = 0;
        for (int b = 0; b < episodes.Count; b++)
        {
            var e = episodes[b];
            int n = e.Response.Length;
            if (oldLogProbs[b].Length != n || e.RefLogProbs.Length != n || e.TaskRewards.Length < n)
                throw new ArgumentException($"episode {b}: {n} response tokens but {oldLogProbs[b].Length} log π_old, {e.RefLogProbs.Length} log π_ref and {e.TaskRewards.Length} task rewards");
            rewards[b] = new double[n];
            for (int i = 0; i < n; i++)
            {
                int t = sumKlBackward ? n - 1 - i : i;
                double kl = oldLogProbs[b][t] - e.RefLogProbs[t]; // a float difference, as the env's log π_ref is float
                klSum += kl;
                rewards[b][t] = e.TaskRewards[t] - klCoef * kl;
            }
        }
        return new KlShapedRewards(rewards, klSum / episodes.Count);
    }
}
