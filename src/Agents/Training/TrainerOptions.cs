using RlhfGym.Agents.Algorithms;
using RlhfGym.Env.Training;

namespace RlhfGym.Agents.Training;

/// <summary>Options of one training run (everything a resumed run must share with the one it continues).</summary>
public sealed record TrainerOptions
{
    /// <summary>A name in <see cref="AlgorithmRegistry"/>: ppo, reinforce, grpo (grpo-process, dr-grpo, dr-grpo-process), or one you registered.</summary>
    public string Algorithm { get; init; } = "ppo";
    public int Iterations { get; init; } = 80;
    public long Seed { get; init; } = 1;
    /// <summary>Sampling temperature (the paper: 1).</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>β of the KL shaping; fixed unless <see cref="KlTarget"/> is set.</summary>
    public double KlCoef { get; init; } = 0.3;
    public double? KlTarget { get; init; }
    public int EvalEvery { get; init; } = 20;
    public int EvalSamplesPerPrompt { get; init; } = 16;
    public int CheckpointEvery { get; init; } = 10;
    public PpoOptions Ppo { get; init; } = new();
    public ReinforceOptions Reinforce { get; init; } = new();
    public GrpoOptions Grpo { get; init; } = new();
    /// <summary>Options for an algorithm of your own (`--algorithm-option KEY=VALUE`), read from
    /// <see cref="AlgorithmContext.Options"/>; recorded in run.json like every other option.</summary>
    public IReadOnlyDictionary<string, string> AlgorithmOptions { get; init; } = new Dictionary<string, string>();

    public void Validate()
    {
        AlgorithmRegistry.Validate(Algorithm);
        if (Iterations <= 0) throw new ArgumentOutOfRangeException(nameof(Iterations), Iterations, "iterations must be > 0");
        if (!(Temperature > 0) || !double.IsFinite(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature (--temperature) must be a finite number > 0");
        // Checked here, before an env is built or run.json written, with the flags' names.
        if (!(KlCoef >= 0) || !double.IsFinite(KlCoef)) throw new ArgumentOutOfRangeException(nameof(KlCoef), KlCoef, "β (--kl-coef) must be a finite number >= 0");
        if (KlTarget is { } target && (!(target > 0) || !double.IsFinite(target)))
            throw new ArgumentOutOfRangeException(nameof(KlTarget), target, "the KL target (--kl-target) must be a finite number > 0");
        foreach (var actor in new[] { Ppo.Actor, Reinforce.Actor, Grpo.Actor })
            if (!(actor.LearningRate > 0) || !double.IsFinite(actor.LearningRate))
                throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.LearningRate), actor.LearningRate, "the actor learning rate (--lr) must be a finite number > 0");
        if (Algorithm == "reinforce" && Reinforce.Baseline == ReinforceBaseline.Rloo && Reinforce.K < 2)
            throw new ArgumentOutOfRangeException(nameof(Reinforce), Reinforce.K, "RLOO needs k >= 2 samples per prompt (--k): the baseline leaves one out");
        if (EvalEvery <= 0 || CheckpointEvery <= 0 || EvalSamplesPerPrompt <= 0)
            throw new ArgumentOutOfRangeException(nameof(EvalEvery), "eval-every, checkpoint-every and eval samples must be > 0");
    }
}
