using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Tests;

/// <summary>
/// One small but real bundle per test run: a toy world, an SFT model trained for one epoch (so entropies have
/// structure), a reward model = SFT + a fresh head (untrained: these tests check mechanics, not quality), and
/// normalizers with planted coefficients (so location matters).
/// </summary>
internal static class TestBundles
{
    private static readonly Lazy<string> Segment = new(() => Build(RewardReading.Segment(1.0)));

    public static string SegmentBundle => Segment.Value;

    private static string Build(RewardReading reading) =>
        Build(TempDir.ForProcess("test-bundle"), "Test-v0", reading);

    /// <summary>
    /// A bundle a policy can learn against, in under two minutes: PhraseWorld seed 1 with the built-in datasets, but SFT
    /// and the segment reward model trained one epoch each (the built-in trains 4 and 3). Its reward model ranks
    /// validation pairs well above chance (about 0.75 pairwise), so gold follows the reward; that is what the PyTorch
    /// example's CI run needs. (Fewer SFT examples and pairs save a minute but leave an RM whose reward gold does not
    /// follow within a short run.)
    /// </summary>
    public static string BuildLearnable(string root, string name = "PhraseWorld-Segment-v0")
    {
        string worldDir = Path.Combine(root, "world"), sftDir = Path.Combine(root, "sft"), bundleDir = Path.Combine(root, "bundle");
        WorldStore.Build(worldDir, 1);
        PhraseWorldSft.Train(worldDir, sftDir, new SftOptions { Epochs = 1 }, CPU).Model.Dispose();
        PhraseWorldRewardModel.TrainBundle(worldDir, sftDir, RewardReading.Segment(), new RewardTrainingOptions { Epochs = 1 }, bundleDir, name, CPU);
        return bundleDir;
    }

    /// <summary>Builds the small bundle into root/bundle under the env name given; returns the bundle directory.</summary>
    public static string Build(string root, string name, RewardReading reading)
    {
        string worldDir = Path.Combine(root, "world"), sftDir = Path.Combine(root, "sft"), bundleDir = Path.Combine(root, "bundle");
        var world = WorldStore.Build(worldDir, 11, TestWorlds.Small with { SftPerTrainPrompt = 8 }).World;
        var (sft, _) = PhraseWorldSft.Train(worldDir, sftDir, new SftOptions { Epochs = 1 }, CPU);
        random.manual_seed(5);
        using var rm = RewardModel.FromSft(sftDir, CPU);
        var normalizers = new Dictionary<NormalizerKind, RewardNormalizer>
        {
            [NormalizerKind.Location] = new() { Kind = NormalizerKind.Location, Mean = new(0.3, 0.1), Std = new(0.2, 1.5), SigmaFloor = 0.2 },
            [NormalizerKind.Global] = new() { Kind = NormalizerKind.Global, Mean = new(0, 0.05), Std = new(0, 0.8), SigmaFloor = 0.1 },
            [NormalizerKind.Last] = new() { Kind = NormalizerKind.Last, Mean = new(0, -0.1), Std = new(0, 1.2), SigmaFloor = 0.1 },
            [NormalizerKind.None] = RewardNormalizer.Identity with { SigmaFloor = 0.1 },
        };
        var prompts = world.Prompts.Select(p => new BundlePrompt(p.Id, p.Split, p.Text, p.Tokens)).ToList();
        EnvBundle.Write(bundleDir, name, new EnvOptions { Reading = reading, MaxNewTokens = 12 }, world.Tokenizer, prompts,
            normalizers, sft, rm, PhraseWorldPlugin.BundleJudge(world), new System.Text.Json.Nodes.JsonObject());
        sft.Dispose();
        return bundleDir;
    }
}
