using RlhfGym.Env.Bundles;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>
/// Maps env ids to bundles, like gymnasium.make. Worlds register their ids with a builder (PhraseWorld's plug-in:
/// <c>PhraseWorldPlugin.Register()</c>); an id's bundle is built on first use and cached under <see cref="CacheRoot"/>.
/// Anything that is a bundle directory can be passed instead of an id.
/// </summary>
public static class EnvRegistry
{
    private static readonly Dictionary<string, Func<string, Action<string>?, Device, string>> Builders = new();
    private static readonly Lock Gate = new();

    public static IReadOnlyCollection<string> Ids
    {
        get { lock (Gate) return Builders.Keys.ToList(); }
    }

    /// <summary>$RLHFGYM_HOME, else ~/.cache/rlhfgym.</summary>
    public static string CacheRoot => Environment.GetEnvironmentVariable("RLHFGYM_HOME") is { Length: > 0 } home ? home
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rlhfgym");

    /// <summary>Register a builder: given a directory, write a bundle into it and return the directory. Registering an
    /// id again replaces its builder.</summary>
    public static void Register(string id, Func<string, Action<string>?, Device, string> builder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(id);
        ArgumentNullException.ThrowIfNull(builder);
        lock (Gate) Builders[id] = builder;
    }

    public static bool IsRegistered(string id)
    {
        lock (Gate) return Builders.ContainsKey(id);
    }

    /// <summary>Whether <see cref="Resolve"/> would return at once: a bundle directory, or a registered id whose bundle is
    /// already built in the cache (an unknown id is not "built": Resolve refuses it at once too).</summary>
    public static bool IsBuilt(string idOrPath) =>
        Directory.Exists(idOrPath) || !IsRegistered(idOrPath) || File.Exists(Path.Combine(CacheRoot, "bundles", idOrPath, EnvBundle.EnvFile));

    /// <summary>The bundle directory for an id (built if needed) or a path.</summary>
    public static string Resolve(string idOrPath, Action<string>? progress = null, Device? device = null)
    {
        if (Directory.Exists(idOrPath)) return idOrPath;
        Func<string, Action<string>?, Device, string>? build;
        lock (Gate) Builders.TryGetValue(idOrPath, out build);
        if (build is null)
            throw new ArgumentException($"'{idOrPath}' is neither an env bundle directory nor a registered env id ({(Ids.Count == 0 ? "none registered" : string.Join(", ", Ids))})");
        string dir = Path.Combine(CacheRoot, "bundles", idOrPath);
        if (File.Exists(Path.Combine(dir, EnvBundle.EnvFile))) return dir;
        progress?.Invoke($"building {idOrPath} into {dir} (first use; cached afterwards)");
        return build(dir, progress, device ?? CPU);
    }

    /// <param name="shared">Take the env's rows in a decoder shared with other envs (a server's sessions); null: its own.</param>
    public static TextVectorEnv Make(string idOrPath, int numEnvs, Func<EnvOptions, EnvOptions>? configure = null,
        AutoresetMode autoreset = AutoresetMode.NextStep, Device? device = null, Action<string>? progress = null, EnvDecoders? shared = null)
    {
        var bundle = EnvBundle.Load(Resolve(idOrPath, progress, device));
        var options = configure is null ? bundle.Defaults : configure(bundle.Defaults);
        return new TextVectorEnv(bundle, numEnvs, options, autoreset, device, IsRegistered(idOrPath) ? idOrPath : bundle.Name, shared: shared);
    }
}
