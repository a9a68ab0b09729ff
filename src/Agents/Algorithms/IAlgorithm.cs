using RlhfGym.Agents.Rollouts;

namespace RlhfGym.Agents.Algorithms;

/// <summary>What one update reports (NaN where an algorithm has no such figure).</summary>
public sealed record UpdateStats(double PolicyLoss, double ValueLoss, double Entropy, double ApproxKl, double ClipFraction,
    double ExplainedVariance, double Kl, double ShapedReturn);

/// <summary>
/// A learning algorithm the trainer loop can swap: it sees rollouts of finished episodes (with the env's per-token
/// task rewards and reference log-probs) and updates the policy.
/// </summary>
public interface IAlgorithm : IDisposable
{
    string Name { get; }
    /// <summary>Sub-envs per prompt the rollout should use (k for RLOO, else 1).</summary>
    int GroupSize { get; }
    UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations);
    /// <summary>Write and read everything beyond the policy weights a resumed run needs (critic, optimizers, baselines).</summary>
    void SaveState(string directory);
    void LoadState(string directory);
}
