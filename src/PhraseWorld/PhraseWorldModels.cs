using RlhfGym.Models.Transformer;

namespace RlhfGym.PhraseWorld;

/// <summary>The transformer shape PhraseWorld trains (SFT, reward models, policies, critics), sized for 2 CPU cores.</summary>
public static class PhraseWorldModels
{
    public static TransformerConfig Config(int vocabSize) => new()
    {
        VocabSize = vocabSize,
        DModel = 64,
        NLayers = 2,
        NHeads = 4,
        NKvHeads = 4,
        DFf = 256,
        MaxSeqLen = 192,
        Norm = NormKind.RmsNorm,
        Mlp = MlpKind.SwiGlu,
        TiedEmbeddings = true,
    };

    /// <summary>Longest response the world's tools generate (the behaviour's longest is under 50 tokens).</summary>
    public const int MaxNewTokens = 64;
}
