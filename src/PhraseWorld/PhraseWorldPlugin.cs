using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Judging;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using static TorchSharp.torch;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// Plugs PhraseWorld into the env core, the way a Gymnasium package registers its envs on import: the ids
/// PhraseWorld-{Bandit,Token,Segment}-v0 (built on first use: world seed 1 → SFT → reward model of that mode → bundle,
/// cached under <see cref="EnvRegistry.CacheRoot"/>, the world and SFT model shared by the three), the same three in
/// each named world with dials (PhraseWorld-{Mode}-{LocationTrend,BoundaryNoise,VerbosityBias}-v1), and the loader of
/// its gold judge (bundles whose env.json names <c>world.json</c>). Call once at start-up; calling again is harmless.
/// </summary>
public static class PhraseWorldPlugin
{
    /// <summary>The reward modes every PhraseWorld is registered under, in registration order.</summary>
    private static readonly string[] Modes = ["bandit", "token", "segment"];

    public static readonly IReadOnlyList<string> EnvIds = Modes.Select(m => EnvId(m)).ToArray();

    /// <summary>
    /// The id (and bundle name) of PhraseWorld under a reward mode: "segment" → PhraseWorld-Segment-v0; in a named
    /// world with dials (<see cref="WorldDials.Named"/>): "segment", "LocationTrend" → PhraseWorld-Segment-LocationTrend-v1.
    /// </summary>
    public static string EnvId(string mode, string? world = null)
    {
        string m = $"{char.ToUpperInvariant(mode[0])}{mode[1..]}";
        return world is null ? $"PhraseWorld-{m}-v0" : $"PhraseWorld-{m}-{world}-v1";
    }

    /// <summary>Every id this plug-in registers: the three v0 envs, then each named world's three.</summary>
    public static IEnumerable<string> AllEnvIds => EnvIds.Concat(WorldDials.Named.Keys.SelectMany(w => Modes.Select(m => EnvId(m, w))));

    /// <summary>
    /// The id of <paramref name="envId"/>'s env in a named world: a v0 PhraseWorld id moves to that world's; any
    /// other id is refused, naming it.
    /// </summary>
    public static string InWorld(string envId, string world)
    {
        if (!WorldDials.Named.ContainsKey(world)) throw new ArgumentException($"--world must be one of {string.Join(", ", WorldDials.Named.Keys)}; got '{world}'");
        int i = EnvIds.ToList().IndexOf(envId);
        return i >= 0 ? EnvId(Modes[i], world) : throw new ArgumentException($"--world moves PhraseWorld v0 envs ({string.Join(", ", EnvIds)}) into a named world; '{envId}' is not one");
    }

    public static void Register()
    {
        foreach (var world in new string?[] { null }.Concat(WorldDials.Named.Keys))
            foreach (var mode in Modes)
                EnvRegistry.Register(EnvId(mode, world), (dir, p, d) => BuildBundle(dir, RewardReading.Parse(mode), world, p, d));
        JudgeRegistry.Register(WorldStore.WorldFile, PhraseWorldJudge.Load);
    }

    /// <summary>How a PhraseWorld bundle carries its judge: world.json (with the world's prompts.jsonl beside it).</summary>
    public static BundleJudge BundleJudge(World world) => new(WorldStore.WorldFile, dir => WorldStore.Save(dir, world));

    /// <summary>The world behind a PhraseWorld bundle's judge (for PhraseWorld-only reports such as the demo's).</summary>
    public static World WorldOf(EnvBundle bundle) => bundle.Judge is PhraseWorldJudge judge ? judge.World
        : throw new InvalidOperationException($"{bundle.Directory}: not a PhraseWorld bundle (its env.json names no '{WorldStore.WorldFile}' judge)");

    private static string BuildBundle(string bundleDir, RewardReading reading, string? worldName, Action<string>? progress, Device device)
    {
        // One world and SFT model per named world (seed 1), shared by its three reward modes.
        string shared = Path.Combine(EnvRegistry.CacheRoot, worldName is null ? "phraseworld-seed1" : $"phraseworld-{worldName.ToLowerInvariant()}-seed1");
        string world = Path.Combine(shared, "world"), sft = Path.Combine(shared, "sft");
        if (!File.Exists(Path.Combine(world, WorldStore.PairsFile))) WorldStore.Build(world, 1, dials: worldName is null ? null : WorldDials.Named[worldName]);
        if (!File.Exists(Path.Combine(sft, "sft.json"))) PhraseWorldSft.Train(world, sft, new SftOptions(), device, progress).Model.Dispose();
        PhraseWorldRewardModel.TrainBundle(world, sft, reading, new RewardTrainingOptions(), bundleDir, EnvId(reading.Name, worldName), device, progress);
        return bundleDir;
    }
}
