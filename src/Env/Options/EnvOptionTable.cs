using System.Globalization;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Options;

/// <summary>
/// Every env option, once: the CLI flags, the wire's "make" options, compare grids, env.json and docs/env.md's option
/// table are all read from here (a test holds the docs to it).
/// </summary>
public static class EnvOptionTable
{
    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static double Num(string v) => double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture);
    private static string[] Names<T>() where T : struct, Enum => Enum.GetValues<T>().Select(EnvOptions.Name).ToArray();

    // Order matters when options are applied: mode before c_ent, because naming a mode resets c_ent to the paper's
    // value unless c_ent is given too (as the CLI always did).
    public static IReadOnlyList<EnvOption> All { get; } =
    [
        new()
        {
            Key = "mode", Type = EnvOptionType.Choice, Allowed = ["bandit", "token", "segment"],
            Doc = "where the reward model is read: once at EOS, at every content token, or at entropy cuts (method.md §1)",
            Get = o => o.Reading.Name,
            Set = (o, v) => o with { Reading = RewardReading.Parse(v) },
        },
        new()
        {
            Key = "c_ent", Type = EnvOptionType.Number, Minimum = 0, BlankMeansUnset = true,
            Doc = "entropy threshold that ends a segment (segment reading only; naming a mode without it means 2.0)",
            Get = o => o.Reading.Mode == RewardMode.Segment ? F(o.Reading.CEnt) : "",
            Set = (o, v) => o with { Reading = RewardReading.Parse(o.Reading.Name, Num(v)) },
        },
        new()
        {
            Key = "normalizer", Type = EnvOptionType.Choice, Allowed = Names<NormalizerKind>(),
            Doc = "how raw segment rewards are normalized by their location k/K (docs/rewards.md)",
            Get = o => RewardNormalizer.KindName(o.Normalizer),
            Set = (o, v) => o with { Normalizer = RewardNormalizer.ParseKind(v) },
        },
        new()
        {
            Key = "interpolation", Type = EnvOptionType.Choice, Allowed = Names<Interpolation>(),
            Doc = "how a segment's reward is spread over its tokens: split evenly, repeated, or on its last token only",
            Get = o => EnvOptions.Name(o.Interpolation),
            Set = (o, v) => o with { Interpolation = EnvOptions.Parse<Interpolation>(v, "interpolation") },
        },
        new()
        {
            Key = "delivery", Type = EnvOptionType.Choice, Allowed = Names<RewardDelivery>(),
            Doc = "when rewards reach the agent: at the episode's end (paper-exact) or as each segment closes",
            Get = o => EnvOptions.Name(o.Delivery),
            Set = (o, v) => o with { Delivery = EnvOptions.Parse<RewardDelivery>(v, "delivery") },
        },
        new()
        {
            Key = "max_new_tokens", Type = EnvOptionType.Integer, Minimum = 0, MinimumExclusive = true,
            Doc = "the new-token budget of an episode; reaching it without EOS truncates",
            Get = o => o.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
            Set = (o, v) => o with { MaxNewTokens = int.Parse(v, NumberStyles.Integer, CultureInfo.InvariantCulture) },
        },
        new()
        {
            Key = "missing_eos", Type = EnvOptionType.Choice, Allowed = Names<MissingEosRule>(),
            Doc = "a response cut by the budget: its last token scored as EOS (released code), or as it is with a penalty",
            Get = o => EnvOptions.Name(o.MissingEos),
            Set = (o, v) => o with { MissingEos = EnvOptions.Parse<MissingEosRule>(v, "missing_eos") },
        },
        new()
        {
            Key = "missing_eos_penalty", Type = EnvOptionType.Number, Minimum = 0,
            Doc = "subtracted once, from the last token's reward, under missing_eos penalty",
            Get = o => F(o.MissingEosPenalty),
            Set = (o, v) => o with { MissingEosPenalty = Num(v) },
        },
        new()
        {
            Key = "dense_as_bandit", Type = EnvOptionType.Boolean,
            Doc = "read densely, pay the mean normalized segment reward once at the end (the paper's \"segment as bandit\")",
            Get = o => o.DenseAsBandit ? "true" : "false",
            Set = (o, v) => o with { DenseAsBandit = v == "true" },
        },
        new()
        {
            Key = "length_norm", Type = EnvOptionType.Boolean,
            Doc = "divide each token's reward by the response length T, as the released code does for its token-level RM (dense readings, episode delivery)",
            Get = o => o.LengthNorm ? "true" : "false",
            Set = (o, v) => o with { LengthNorm = v == "true" },
        },
        new()
        {
            Key = "prompt_split", Type = EnvOptionType.Choice, Allowed = ["train", "validation", "test"],
            Doc = "the prompt split Reset draws from",
            Get = o => o.PromptSplit,
            Set = (o, v) => o with { PromptSplit = v },
        },
    ];

    /// <summary>The option with this key, or null.</summary>
    public static EnvOption? Find(string key) => All.FirstOrDefault(o => o.Key == key);

    public static IEnumerable<string> Keys => All.Select(o => o.Key);
}
