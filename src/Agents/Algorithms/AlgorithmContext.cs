using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Core;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>What an algorithm factory gets from the trainer to build one run's algorithm.</summary>
/// <param name="Policy">The policy the trainer samples rollouts from and checkpoints; the algorithm updates it.</param>
/// <param name="Env">The env's spec (sub-envs, pad id, reward mode, ...).</param>
/// <param name="InitDir">The SFT model the policy started from (e.g. for a critic initialised from it).</param>
/// <param name="Device">Where the policy lives.</param>
/// <param name="Options">The run's options (algorithm-specific ones included).</param>
public sealed record AlgorithmContext(PolicyModel Policy, EnvSpec Env, string InitDir, Device Device, TrainerOptions Options)
{
    public long Seed => Options.Seed;
}
