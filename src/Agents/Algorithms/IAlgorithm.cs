using RlhfGym.Agents.Rollouts;

namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// A learning algorithm the trainer loop can swap: it sees rollouts of finished episodes (with the env's per-token
/// task rewards and reference log-probs) and updates the policy. Register a factory under a name in
/// <see cref="AlgorithmRegistry"/> and the trainer runs it like the built-ins: metrics, TensorBoard, checkpoints, resume.
/// </summary>
public interface IAlgorithm : IDisposable
{
    string Name { get; }
    /// <summary>Sub-envs per prompt the rollout should use (k for RLOO, else 1).</summary>
    int GroupSize { get; }
    /// <summary>One update on a rollout; <paramref name="klCoef"/> is β of the shaping (see <see cref="KlShaping"/>).</summary>
    UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations);
    /// <summary>Write and read everything beyond the policy weights a resumed run needs (critic, optimizers, baselines).</summary>
    void SaveState(string directory);
    void LoadState(string directory);
}
