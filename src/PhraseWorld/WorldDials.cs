using System.Globalization;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// Properties of real text that PhraseWorld v0 leaves out, each a dial with 0 meaning "as in v0"
/// (docs/phraseworld.md, "World dials", says what each models and why its named world uses the value it does).
/// A world built with every dial at 0 is PhraseWorld v0, byte for byte.
/// </summary>
public sealed record WorldDials
{
    /// <summary>
    /// τ in [0, 1]: the k-th of a response's K content phrases has its positive value multiplied by
    /// 1 + τ·(2(k − 1)/(K − 1) − 1) (1 when K = 1): later phrases are worth more, the mean multiplier is 1.
    /// </summary>
    public double LocationTrend { get; init; }

    /// <summary>
    /// ρ in [0, 1]: round(8ρ) of each topic's 8 informative phrases are irregular. Half of them (rounded up) are
    /// branch stems, each with 3 sibling phrases that share its first two words (a high-entropy point inside a
    /// phrase); the rest are collocation heads, which the behaviour policy follows with a fixed partner phrase
    /// <see cref="CollocationProbability"/> of the time (a phrase end without an entropy spike).
    /// </summary>
    public double BoundaryNoise { get; init; }

    /// <summary>
    /// b in [0, 1], gold per token: the preference labeller compares gold_A − gold_B + b·(length_A − length_B), so
    /// labels favour the longer response (lengths in tokens before the first EOS).
    /// </summary>
    public double VerbosityBias { get; init; }

    /// <summary>How often a collocation head is followed by its partner (when the response has room for it).</summary>
    public const double CollocationProbability = 0.8;

    /// <summary>Siblings per branch stem: with the stem, a 4-way choice after its first two words.</summary>
    public const int SiblingsPerStem = 3;

    public static WorldDials None { get; } = new();

    public bool IsNone => LocationTrend == 0 && BoundaryNoise == 0 && VerbosityBias == 0;

    /// <summary>
    /// The named worlds the env registry builds: one dial each, at the value docs/phraseworld.md argues for (chosen
    /// before any comparison ran on them).
    /// </summary>
    public static IReadOnlyDictionary<string, WorldDials> Named { get; } = new Dictionary<string, WorldDials>
    {
        ["LocationTrend"] = new() { LocationTrend = 0.5 },
        ["BoundaryNoise"] = new() { BoundaryNoise = 0.5 },
        ["VerbosityBias"] = new() { VerbosityBias = 0.1 },
    };

    /// <summary>Throws naming the dial when one is out of range.</summary>
    public WorldDials Validated()
    {
        Check(LocationTrend, "location_trend");
        Check(BoundaryNoise, "boundary_noise");
        Check(VerbosityBias, "verbosity_bias");
        return this;
    }

    /// <summary>Throws naming <paramref name="name"/> (a dial, or the option that sets it) unless value is in [0, 1].</summary>
    public static void Check(double value, string name)
    {
        if (!(value >= 0 && value <= 1))
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [0, 1]; got {value.ToString("R", CultureInfo.InvariantCulture)}");
    }

    /// <summary>The dials as world.json and `world build --json` write them.</summary>
    public System.Text.Json.Nodes.JsonObject ToJson() => new()
    {
        ["location_trend"] = LocationTrend,
        ["boundary_noise"] = BoundaryNoise,
        ["verbosity_bias"] = VerbosityBias,
    };

    /// <summary>The location multiplier of the k-th (1-based) of K content phrases.</summary>
    public double LocationMultiplier(int k, int count) =>
        LocationTrend == 0 || count <= 1 ? 1.0 : 1 + LocationTrend * (2.0 * (k - 1) / (count - 1) - 1);

    /// <summary>How many of a topic's informative phrases are branch stems and collocation heads.</summary>
    public (int Stems, int Collocations) Irregular(int informativePerTopic)
    {
        int irregular = (int)Math.Round(informativePerTopic * BoundaryNoise, MidpointRounding.AwayFromZero);
        int stems = (irregular + 1) / 2;
        return (stems, irregular - stems);
    }
}
