namespace RlhfGym.PhraseWorld;

/// <summary>A supervised example: a prompt and a behaviour response (token ids ending with EOS).</summary>
public sealed record SftExample(string PromptId, string Split, int[] Response, double Gold);

/// <summary>
/// A preference pair as a labeller would give it: the chosen response won a Bradley–Terry draw on the gold-score
/// difference. The gold scores are kept for diagnostics only; a reward model must never read them.
/// </summary>
public sealed record PreferencePair(string PromptId, string Split, int[] Chosen, int[] Rejected, double ChosenGold, double RejectedGold);

/// <summary>How many examples a world build writes.</summary>
public sealed record DatasetSizes
{
    public int SftPerTrainPrompt { get; init; } = 400;
    public int SftPerValidationPrompt { get; init; } = 20;
    public int PairsPerTrainPrompt { get; init; } = 120;
    public int PairsPerValidationPrompt { get; init; } = 40;
    /// <summary>Bradley–Terry temperature of the labeller: P(a ≻ b) = σ((gold_a − gold_b) / T). Lower is less noisy.</summary>
    public double PairTemperature { get; init; } = 0.5;
}
