using System.CommandLine;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Options;

namespace RlhfGym.Cli;

/// <summary>
/// The env's options as command-line flags, one per row of <see cref="EnvOptionTable"/> (--mode, --c-ent, …,
/// --dense-as-bandit, --prompt-split); unset flags keep the bundle's defaults. Every value goes through
/// <see cref="EnvOptionsCodec"/>, so the CLI accepts and refuses exactly what the wire and env.json do.
/// </summary>
public sealed class EnvCliOptions
{
    public readonly Option<string> Env = new("--env") { Description = "registered env id (e.g. PhraseWorld-Segment-v0) or env bundle directory", Required = true };
    public readonly Option<int> NumEnvs = new("--num-envs") { Description = "sub-envs stepped together", DefaultValueFactory = _ => 4 };
    public readonly Option<string?> Autoreset = new("--autoreset") { Description = "next-step (default) or disabled" };

    /// <summary>The env option flags by option key (text-valued: the codec parses them).</summary>
    public IReadOnlyDictionary<string, Option<string?>> Flags { get; } = EnvOptionTable.All.ToDictionary(o => o.Key, Flag);

    private static Option<string?> Flag(EnvOption option) => new(option.Flag)
    {
        Description = option.Type switch
        {
            EnvOptionType.Choice => option.Doc, // the help name lists the words
            EnvOptionType.Boolean => $"{option.Doc} (the flag alone means true)",
            _ => $"{option.Doc} ({option.Accepts})",
        },
        HelpName = option.Type switch
        {
            EnvOptionType.Choice => string.Join("|", option.Allowed),
            EnvOptionType.Boolean => "true|false",
            _ => option.Type.ToString().ToLowerInvariant(),
        },
        // A boolean flag may stand alone (--dense-as-bandit) or take a value (--dense-as-bandit false).
        Arity = option.Type == EnvOptionType.Boolean ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Env);
        command.Options.Add(NumEnvs);
        foreach (var flag in Flags.Values) command.Options.Add(flag);
        command.Options.Add(Autoreset);
    }

    /// <summary>The env option flags that were given, as option key → text (a lone boolean flag is "true").</summary>
    public Dictionary<string, string> Given(ParseResult parse)
    {
        var given = new Dictionary<string, string>();
        foreach (var (key, flag) in Flags)
        {
            if (parse.GetResult(flag) is not { Implicit: false } result) continue;
            given[key] = result.Tokens.Count == 0 ? "true" : parse.GetValue(flag) ?? "";
        }
        return given;
    }

    /// <summary>The given flags over the bundle's defaults; a bad value is an <see cref="EnvOptionException"/> naming the flag.</summary>
    public EnvOptions Apply(ParseResult parse, EnvOptions defaults) => NamingFlag(() => EnvOptionsCodec.Decode(Given(parse), defaults));

    /// <summary>The flags that were given, checked and in canonical form, as the wire's "make" options
    /// (docs/protocol.md); unset flags keep the server's defaults.</summary>
    public Dictionary<string, string> ToWireOptions(ParseResult parse) =>
        NamingFlag(() => Given(parse).ToDictionary(kv => kv.Key, kv => EnvOptionsCodec.Canonical(kv.Key, kv.Value)));

    // The codec names the option key; on the command line the user typed the flag, so say that too.
    private static T NamingFlag<T>(Func<T> parse)
    {
        try { return parse(); }
        catch (EnvOptionException e)
        {
            throw new EnvOptionException(e.Key, $"{EnvOptionTable.Find(e.Key)?.Flag ?? e.Key}: {e.Message}", e);
        }
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
