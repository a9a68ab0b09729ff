using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

/// <summary>Small seeded models for tests.</summary>
internal static class TinyModels
{
    public static TransformerConfig Config(int nKvHeads = 4, MlpKind mlp = MlpKind.SwiGlu, NormKind norm = NormKind.RmsNorm,
        bool tied = true, bool bias = false) => new()
        {
            VocabSize = 50,
            DModel = 32,
            NLayers = 2,
            NHeads = 4,
            NKvHeads = nKvHeads,
            DFf = 64,
            MaxSeqLen = 64,
            Mlp = mlp,
            Norm = norm,
            TiedEmbeddings = tied,
            Bias = bias,
        };

    public static CausalTransformer Create(TransformerConfig config, long seed = 1)
    {
        random.manual_seed(seed);
        var model = new CausalTransformer(config);
        model.eval();
        return model;
    }
}
