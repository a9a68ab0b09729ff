using System.CommandLine;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Cli;

/// <summary>The env's options as command-line flags; unset flags keep the bundle's defaults.</summary>
public sealed class EnvCliOptions
{
    public readonly Option<string> Env = new("--env") { Description = "registered env id (e.g. PhraseWorld-Segment-v0) or env bundle directory", Required = true };
    public readonly Option<int> NumEnvs = new("--num-envs") { Description = "sub-envs stepped together", DefaultValueFactory = _ => 4 };
    public readonly Option<string?> Mode = new("--mode") { Description = "reward reading: bandit, token or segment" };
    public readonly Option<double?> CEnt = new("--c-ent") { Description = "entropy threshold for segment mode" };
    public readonly Option<string?> Normalizer = new("--normalizer") { Description = "location, global, last or none" };
    public readonly Option<string?> Interpolation = new("--interpolation") { Description = "even, repeat or none" };
    public readonly Option<string?> Delivery = new("--delivery") { Description = "episode (paper-exact) or online" };
    public readonly Option<int?> MaxNewTokens = new("--max-new-tokens") { Description = "new-token budget per episode" };
    public readonly Option<string?> MissingEos = new("--missing-eos") { Description = "overwrite (score the last token as EOS) or penalty" };
    public readonly Option<double?> MissingEosPenalty = new("--missing-eos-penalty") { Description = "penalty for a response without EOS (with --missing-eos penalty)" };
    public readonly Option<bool> DenseAsBandit = new("--dense-as-bandit") { Description = "pay the mean of the dense segment rewards once at the end" };
    public readonly Option<string?> Autoreset = new("--autoreset") { Description = "next-step (default) or disabled" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Env, NumEnvs, Mode, CEnt, Normalizer, Interpolation, Delivery, MaxNewTokens, MissingEos, MissingEosPenalty, DenseAsBandit, Autoreset })
            command.Options.Add(option);
    }

    public EnvOptions Apply(ParseResult parse, EnvOptions defaults)
    {
        var o = defaults;
        if (parse.GetValue(Mode) is { } mode) o = o with { Reading = RewardReading.Parse(mode, parse.GetValue(CEnt) ?? RewardReading.PaperCEnt) };
        else if (parse.GetValue(CEnt) is { } c) o = o with { Reading = RewardReading.Parse(o.Reading.Name, c) };
        if (parse.GetValue(Normalizer) is { } n) o = o with { Normalizer = RewardNormalizer.ParseKind(n) };
        if (parse.GetValue(Interpolation) is { } i) o = o with { Interpolation = EnvOptions.Parse<Interpolation>(i, "--interpolation") };
        if (parse.GetValue(Delivery) is { } d) o = o with { Delivery = EnvOptions.Parse<RewardDelivery>(d, "--delivery") };
        if (parse.GetValue(MaxNewTokens) is { } m) o = o with { MaxNewTokens = m };
        if (parse.GetValue(MissingEos) is { } e) o = o with { MissingEos = EnvOptions.Parse<MissingEosRule>(e, "--missing-eos") };
        if (parse.GetValue(MissingEosPenalty) is { } pen) o = o with { MissingEosPenalty = pen };
        if (parse.GetValue(DenseAsBandit)) o = o with { DenseAsBandit = true };
        o.Validate();
        return o;
    }

    /// <summary>The flags that were given, as the wire's "make" options (docs/protocol.md); unset flags keep the server's defaults.</summary>
    public Dictionary<string, string> ToWireOptions(ParseResult parse)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var o = new Dictionary<string, string>();
        if (parse.GetValue(Mode) is { } mode) o["mode"] = mode;
        if (parse.GetValue(CEnt) is { } c) o["c_ent"] = c.ToString("R", inv);
        if (parse.GetValue(Normalizer) is { } n) o["normalizer"] = n;
        if (parse.GetValue(Interpolation) is { } i) o["interpolation"] = i;
        if (parse.GetValue(Delivery) is { } d) o["delivery"] = d;
        if (parse.GetValue(MaxNewTokens) is { } m) o["max_new_tokens"] = m.ToString(inv);
        if (parse.GetValue(MissingEos) is { } e) o["missing_eos"] = e;
        if (parse.GetValue(MissingEosPenalty) is { } pen) o["missing_eos_penalty"] = pen.ToString("R", inv);
        if (parse.GetValue(DenseAsBandit)) o["dense_as_bandit"] = "true";
        return o;
    }

    /// <summary>Whether --env names a server (tcp://, ipc://) rather than a registry id or bundle.</summary>
    public static bool IsRemote(string env) => env.StartsWith("tcp://", StringComparison.Ordinal) || env.StartsWith("ipc://", StringComparison.Ordinal);

    public AutoresetMode ParseAutoreset(ParseResult parse) => parse.GetValue(Autoreset) switch
    {
        null or "next-step" => AutoresetMode.NextStep,
        "disabled" => AutoresetMode.Disabled,
        var other => throw new ArgumentException($"--autoreset must be next-step or disabled; got '{other}'"),
    };

    /// <summary>Make the env the flags describe.</summary>
    public TextVectorEnv Make(ParseResult parse, TorchSharp.torch.Device device, Action<string> progress) =>
        EnvRegistry.Make(parse.GetValue(Env)!, CommonOptions.Positive(parse.GetValue(NumEnvs), "--num-envs"), d => Apply(parse, d),
            ParseAutoreset(parse), device, progress);
}
