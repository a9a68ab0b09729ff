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
/// cached under <see cref="EnvRegistry.CacheRoot"/>, the world and SFT model shared by the three) and the loader of
/// its gold judge (bundles whose env.json names <c>world.json</c>). Call once at start-up; calling again is harmless.
/// </summary>
public static class PhraseWorldPlugin
{
    public static readonly IReadOnlyList<string> EnvIds = [EnvId("bandit"), EnvId("token"), EnvId("segment")];

    /// <summary>The id (and bundle name) of PhraseWorld under a reward mode: "segment" → PhraseWorld-Segment-v0.</summary>
    public static string EnvId(string mode) => $"PhraseWorld-{char.ToUpperInvariant(mode[0])}{mode[1..]}-v0";

    public static void Register()
    {
        EnvRegistry.Register(EnvIds[0], (dir, p, d) => BuildBundle(dir, RewardReading.Bandit, p, d));
        EnvRegistry.Register(EnvIds[1], (dir, p, d) => BuildBundle(dir, RewardReading.Token, p, d));
        EnvRegistry.Register(EnvIds[2], (dir, p, d) => BuildBundle(dir, RewardReading.Segment(), p, d));
        JudgeRegistry.Register(WorldStore.WorldFile, PhraseWorldJudge.Load);
    }

    /// <summary>How a PhraseWorld bundle carries its judge: world.json (with the world's prompts.jsonl beside it).</summary>
    public static BundleJudge BundleJudge(World world) => new(WorldStore.WorldFile, dir => WorldStore.Save(dir, world));

    /// <summary>The world behind a PhraseWorld bundle's judge (for PhraseWorld-only reports such as the demo's).</summary>
    public static World WorldOf(EnvBundle bundle) => bundle.Judge is PhraseWorldJudge judge ? judge.World
        : throw new InvalidOperationException($"{bundle.Directory}: not a PhraseWorld bundle (its env.json names no '{WorldStore.WorldFile}' judge)");

    private static string BuildBundle(string bundleDir, RewardReading reading, Action<string>? progress, Device device)
    {
        string shared = Path.Combine(EnvRegistry.CacheRoot, "phraseworld-seed1");
        string world = Path.Combine(shared, "world"), sft = Path.Combine(shared, "sft");
        if (!File.Exists(Path.Combine(world, WorldStore.PairsFile))) WorldStore.Build(world, 1);
        if (!File.Exists(Path.Combine(sft, "sft.json"))) PhraseWorldSft.Train(world, sft, new SftOptions(), device, progress).Model.Dispose();
        PhraseWorldRewardModel.TrainBundle(world, sft, reading, new RewardTrainingOptions(), bundleDir, EnvId(reading.Name), device, progress);
        return bundleDir;
    }
}
