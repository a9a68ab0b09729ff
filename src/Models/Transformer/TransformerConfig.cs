using System.Text.Json.Serialization;

namespace RlhfGym.Models.Transformer;

public enum NormKind { RmsNorm, LayerNorm }

public enum MlpKind { Gelu, SwiGlu }

/// <summary>Shape of a decoder-only transformer. Serialised as config.json beside the weights.</summary>
public sealed record TransformerConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 8192;
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 256;
    [JsonPropertyName("n_layers")] public int NLayers { get; init; } = 4;
    [JsonPropertyName("n_heads")] public int NHeads { get; init; } = 4;
    /// <summary>Key/value heads; fewer than <see cref="NHeads"/> gives grouped-query attention.</summary>
    [JsonPropertyName("n_kv_heads")] public int NKvHeads { get; init; } = 4;
    [JsonPropertyName("d_ff")] public int DFf { get; init; } = 1024;
    [JsonPropertyName("max_seq_len")] public int MaxSeqLen { get; init; } = 512;
    [JsonPropertyName("norm")] public NormKind Norm { get; init; } = NormKind.RmsNorm;
    [JsonPropertyName("mlp")] public MlpKind Mlp { get; init; } = MlpKind.SwiGlu;
    [JsonPropertyName("tied_embeddings")] public bool TiedEmbeddings { get; init; } = true;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-5;
    /// <summary>Whether the attention and MLP projections carry biases (GPT-2 does, Llama does not).</summary>
    [JsonPropertyName("bias")] public bool Bias { get; init; }

    [JsonIgnore] public int HeadDim => DModel / NHeads;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is out of range.</summary>
    public void Validate(string source = "config")
    {
        static void Require(bool ok, string source, string field, string expected, object value)
        {
            if (!ok) throw new ArgumentException($"{source}: field '{field}' must be {expected}, got {value}");
        }
        Require(VocabSize > 0, source, "vocab_size", "> 0", VocabSize);
        Require(DModel > 0, source, "d_model", "> 0", DModel);
        Require(NLayers > 0, source, "n_layers", "> 0", NLayers);
        Require(NHeads > 0 && DModel % NHeads == 0, source, "n_heads", "> 0 and divide d_model", NHeads);
        Require(HeadDim % 2 == 0, source, "n_heads", "such that d_model / n_heads is even (rotary)", NHeads);
        Require(NKvHeads > 0 && NHeads % NKvHeads == 0, source, "n_kv_heads", "> 0 and divide n_heads", NKvHeads);
        Require(DFf > 0, source, "d_ff", "> 0", DFf);
        Require(MaxSeqLen > 0, source, "max_seq_len", "> 0", MaxSeqLen);
        Require(RopeTheta > 0, source, "rope_theta", "> 0", RopeTheta);
        Require(NormEps > 0, source, "norm_eps", "> 0", NormEps);
    }
}
