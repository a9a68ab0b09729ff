using RlhfGym.Env.Bundles;
using RlhfGym.Env.PhraseWorld;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>
/// Maps env ids to bundles, like gymnasium.make. The built-in PhraseWorld ids are built on first use (world seed 1 →
/// SFT → reward model of that mode → bundle) and cached under <see cref="CacheRoot"/>; the SFT model is shared by the
/// three. Anything that is a bundle directory can be passed instead of an id.
/// </summary>
public static class EnvRegistry
{
    private static readonly Dictionary<string, Func<string, Action<string>?, Device, string>> Builders = new()
    {
        ["PhraseWorld-Bandit-v0"] = (dir, p, d) => BuildPhraseWorld(dir, RewardReading.Bandit, p, d),
        ["PhraseWorld-Token-v0"] = (dir, p, d) => BuildPhraseWorld(dir, RewardReading.Token, p, d),
        ["PhraseWorld-Segment-v0"] = (dir, p, d) => BuildPhraseWorld(dir, RewardReading.Segment(), p, d),
    };

    public static IReadOnlyCollection<string> Ids => Builders.Keys;

    /// <summary>$RLHFGYM_HOME, else ~/.cache/rlhfgym.</summary>
    public static string CacheRoot => Environment.GetEnvironmentVariable("RLHFGYM_HOME") is { Length: > 0 } home ? home
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "rlhfgym");

    /// <summary>Register a builder: given a directory, write a bundle into it and return the directory.</summary>
    public static void Register(string id, Func<string, Action<string>?, Device, string> builder) => Builders[id] = builder;

    /// <summary>The bundle directory for an id (built if needed) or a path.</summary>
    public static string Resolve(string idOrPath, Action<string>? progress = null, Device? device = null)
    {
        if (Directory.Exists(idOrPath)) return idOrPath;
        if (!Builders.TryGetValue(idOrPath, out var build))
            throw new ArgumentException($"'{idOrPath}' is neither an env bundle directory nor a registered env id ({string.Join(", ", Ids)})");
        string dir = Path.Combine(CacheRoot, "bundles", idOrPath);
        if (File.Exists(Path.Combine(dir, EnvBundle.EnvFile))) return dir;
        progress?.Invoke($"building {idOrPath} into {dir} (first use; cached afterwards)");
        return build(dir, progress, device ?? CPU);
    }

    public static TextVectorEnv Make(string idOrPath, int numEnvs, Func<EnvOptions, EnvOptions>? configure = null,
        AutoresetMode autoreset = AutoresetMode.NextStep, Device? device = null, Action<string>? progress = null)
    {
        var bundle = EnvBundle.Load(Resolve(idOrPath, progress, device));
        var options = configure is null ? bundle.Defaults : configure(bundle.Defaults);
        return new TextVectorEnv(bundle, numEnvs, options, autoreset, device, Builders.ContainsKey(idOrPath) ? idOrPath : bundle.Name);
    }

    private static string BuildPhraseWorld(string bundleDir, RewardReading reading, Action<string>? progress, Device device)
    {
        string shared = Path.Combine(CacheRoot, "phraseworld-seed1");
        string world = Path.Combine(shared, "world"), sft = Path.Combine(shared, "sft");
        if (!File.Exists(Path.Combine(world, WorldStore.PairsFile))) WorldStore.Build(world, 1);
        if (!File.Exists(Path.Combine(sft, "sft.json"))) PhraseWorldSft.Train(world, sft, new SftOptions(), device, progress).Model.Dispose();
        string name = $"PhraseWorld-{char.ToUpperInvariant(reading.Name[0])}{reading.Name[1..]}-v0";
        PhraseWorldRewardModel.TrainBundle(world, sft, reading, new RewardTrainingOptions(), bundleDir, name, device, progress);
        return bundleDir;
    }
}
