using RlhfGym.Env.Normalization;
using RlhfGym.Env.Options;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Bundles;

/// <summary>How a segment's normalized reward is spread over its tokens (method.md §4).</summary>
public enum Interpolation { Even, Repeat, None }

/// <summary>When rewards reach the agent (design.md, "Reward delivery").</summary>
public enum RewardDelivery { Episode, Online }

/// <summary>What happens to a response that hits the token budget without EOS.</summary>
public enum MissingEosRule
{
    /// <summary>The released code's rule: the last token is scored as if it were EOS (the response counts as finished).</summary>
    Overwrite,
    /// <summary>Scored as it is (its last token ends the last segment) and the penalty is subtracted from its last reward.</summary>
    Penalty,
}

/// <summary>Every option of one environment. A bundle stores defaults; each can be overridden when an env is made.</summary>
public sealed record EnvOptions
{
    public RewardReading Reading { get; init; } = RewardReading.Segment();
    public NormalizerKind Normalizer { get; init; } = NormalizerKind.Location;
    public Interpolation Interpolation { get; init; } = Interpolation.Even;
    public RewardDelivery Delivery { get; init; } = RewardDelivery.Episode;
    public int MaxNewTokens { get; init; } = 64;
    public MissingEosRule MissingEos { get; init; } = MissingEosRule.Overwrite;
    public double MissingEosPenalty { get; init; }
    /// <summary>Read a dense reward model segment by segment but pay the mean of the normalized segment rewards once,
    /// at the end (the paper's "segment as bandit" cross ablation). Reading a bandit RM densely ("bandit as segment")
    /// is just a dense <see cref="Reading"/> on a bandit bundle.</summary>
    public bool DenseAsBandit { get; init; }
    /// <summary>
    /// Divide every per-token reward by the response's length T (its tokens through EOS, or the budget when cut), so an
    /// episode's return is a per-token mean rather than a sum: the paper's released code does this for its token-level
    /// reward model (experience_maker.py, "length_norm"). Dense readings with episode delivery only.
    /// </summary>
    public bool LengthNorm { get; init; }
    /// <summary>Which prompt split Reset draws from.</summary>
    public string PromptSplit { get; init; } = "train";

    /// <summary>Every option in its range (<see cref="EnvOptionsCodec.Validate"/>); an <see cref="EnvOptionException"/> names the one that is not.</summary>
    public void Validate() => EnvOptionsCodec.Validate(this);

    public static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

    /// <summary>Parse an option value case-insensitively, naming the option and the allowed values on failure.</summary>
    public static T Parse<T>(string value, string option) where T : struct, Enum =>
        Enum.TryParse<T>(value, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(value, out _)
            ? parsed
            : throw new ArgumentException($"{option} must be one of {string.Join(", ", Enum.GetValues<T>().Select(Name))}; got '{value}'");
}
