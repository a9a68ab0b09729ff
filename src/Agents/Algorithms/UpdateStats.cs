namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// What one update reports: named figures, so an algorithm can report a figure of its own next to the well-known
/// ones. The trainer logs every finite figure (metrics.jsonl and TensorBoard): the well-known ones under their fixed
/// names and order, then the algorithm's own in the order the dictionary lists them. A figure an algorithm does not
/// have is simply left out (reading it gives NaN).
/// </summary>
public sealed record UpdateStats(IReadOnlyDictionary<string, double> Figures)
{
    public const string PolicyLoss = "policy_loss", ValueLoss = "value_loss", PolicyEntropy = "policy_entropy",
        ApproxKl = "approx_kl", ClipFraction = "clip_fraction", ExplainedVariance = "explained_variance";
    /// <summary>Mean per-episode KL(π_old ‖ π_ref); the adaptive KL controller reads it.</summary>
    public const string Kl = "kl";
    /// <summary>Mean per-episode return of the KL-shaped rewards.</summary>
    public const string ShapedReward = "shaped_reward";

    public static IReadOnlyList<string> WellKnown { get; } =
        [PolicyLoss, ValueLoss, PolicyEntropy, ApproxKl, ClipFraction, ExplainedVariance, Kl, ShapedReward];

    /// <summary>The figure, or NaN when the algorithm did not report it.</summary>
    public double this[string name] => Figures.TryGetValue(name, out double v) ? v : double.NaN;
}
