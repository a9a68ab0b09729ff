namespace RlhfGym.Env.Rewards;

/// <summary>Where a reward model is read (method.md §1–2).</summary>
public enum RewardMode
{
    /// <summary>One reward per response, read at EOS (c_ent = ∞).</summary>
    Bandit,
    /// <summary>Every content token is its own segment (c_ent = 0).</summary>
    Token,
    /// <summary>Segments cut where the reference LM's next-token entropy exceeds c_ent.</summary>
    Segment,
}

/// <summary>A reward mode and its entropy threshold.</summary>
public readonly record struct RewardReading(RewardMode Mode, double CEnt)
{
    public const double PaperCEnt = 2.0;

    public static RewardReading Bandit => new(RewardMode.Bandit, double.PositiveInfinity);
    public static RewardReading Token => new(RewardMode.Token, 0);
    public static RewardReading Segment(double cEnt = PaperCEnt) => new(RewardMode.Segment, cEnt);

    public static RewardReading Parse(string mode, double cEnt = PaperCEnt) => mode switch
    {
        "bandit" => Bandit,
        "token" => Token,
        "segment" => double.IsFinite(cEnt) && cEnt >= 0 ? Segment(cEnt)
            : throw new ArgumentException($"c_ent must be a finite number >= 0, got {cEnt}"),
        _ => throw new ArgumentException($"reward mode must be bandit, token or segment; got '{mode}'"),
    };

    public string Name => Mode.ToString().ToLowerInvariant();

    /// <summary>Whether segment rewards need the reference LM's entropies.</summary>
    public bool NeedsEntropy => Mode == RewardMode.Segment;
}
