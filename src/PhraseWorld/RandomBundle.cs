using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// A PhraseWorld-shaped bundle with random weights and identity normalizers: for benchmarks and smoke tests, where
/// speed and mechanics matter and reward quality does not. Nothing is trained, so it takes a second to write.
/// </summary>
public static class RandomBundle
{
    /// <param name="shape">Transformer shape (its vocabulary and length are set here); PhraseWorld's when null.</param>
    public static EnvBundle Write(string dir, int maxNewTokens, long seed, TransformerConfig? shape = null)
    {
        var world = WorldBuilder.Build(seed);
        var config = (shape ?? PhraseWorldModels.Config(world.Tokenizer.VocabSize)) with
        {
            VocabSize = world.Tokenizer.VocabSize,
            MaxSeqLen = Math.Max(192, maxNewTokens + 32),
        };
        random.manual_seed(seed);
        using var reference = new CausalTransformer(config);
        using var rm = new RewardModel(new CausalTransformer(config), new ScalarHead(config.DModel));
        var normalizers = Enum.GetValues<NormalizerKind>().ToDictionary(k => k, k => RewardNormalizer.Identity with { Kind = k });
        var prompts = world.Prompts.Select(p => new BundlePrompt(p.Id, p.Split, p.Text, p.Tokens)).ToList();
        EnvBundle.Write(dir, "Bench-v0", new EnvOptions { Reading = RewardReading.Segment(), MaxNewTokens = maxNewTokens }, world.Tokenizer,
            prompts, normalizers, reference, rm, PhraseWorldPlugin.BundleJudge(world), new System.Text.Json.Nodes.JsonObject());
        return EnvBundle.Load(dir);
    }
}
