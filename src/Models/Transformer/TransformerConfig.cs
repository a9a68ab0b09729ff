using System.Text.Json.Serialization;

namespace RlhfGym.Models.Transformer;

public enum NormKind { RmsNorm, LayerNorm }

public enum MlpKind { Gelu, SwiGlu, GeluTanh }

/// <summary>How positions enter: rotary in attention (Llama family), or a learned table added to the embeddings (GPT-2).</summary>
public enum PositionKind { Rotary, Learned }

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
    /// <summary>Biases on the query, key and value projections only (Qwen2).</summary>
    [JsonPropertyName("qkv_bias")] public bool QkvBias { get; init; }
    [JsonPropertyName("positions")] public PositionKind Positions { get; init; } = PositionKind.Rotary;
    /// <summary>Rotary frequency scaling for long contexts: none, linear or llama3 (the Hugging Face rope_scaling types).</summary>
    [JsonPropertyName("rope_scaling")] public RopeScaling? RopeScaling { get; init; }

    [JsonIgnore] public int HeadDim => DModel / NHeads;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is out of range.</summary>
    public void Validate(string source = "config")
    {
        static void Require(bool ok, string source, string field, string expected, object value)
        {
            if (!ok) throw new ArgumentException($"{source}: field '{field}' must be {expected}, got {value}");
        }
        Require(Enum.IsDefined(Norm), source, "norm", "RmsNorm or LayerNorm", Norm);
        Require(Enum.IsDefined(Mlp), source, "mlp", "Gelu, SwiGlu or GeluTanh", Mlp);
        Require(Enum.IsDefined(Positions), source, "positions", "Rotary or Learned", Positions);
        Require(VocabSize > 0, source, "vocab_size", "> 0", VocabSize);
        Require(DModel > 0, source, "d_model", "> 0", DModel);
        Require(NLayers > 0, source, "n_layers", "> 0", NLayers);
        Require(NHeads > 0 && DModel % NHeads == 0, source, "n_heads", "> 0 and divide d_model", NHeads);
        Require(Positions == PositionKind.Learned || HeadDim % 2 == 0, source, "n_heads", "such that d_model / n_heads is even (rotary)", NHeads);
        Require(NKvHeads > 0 && NHeads % NKvHeads == 0, source, "n_kv_heads", "> 0 and divide n_heads", NKvHeads);
        Require(DFf > 0, source, "d_ff", "> 0", DFf);
        Require(MaxSeqLen > 0, source, "max_seq_len", "> 0", MaxSeqLen);
        Require(RopeTheta > 0, source, "rope_theta", "> 0", RopeTheta);
        Require(NormEps > 0, source, "norm_eps", "> 0", NormEps);
        RopeScaling?.Validate(source);
    }
}

/// <summary>Rotary frequency scaling (Hugging Face's rope_scaling): "linear" divides every frequency by Factor;
/// "llama3" divides only the low frequencies, blending in between (Llama 3.1).</summary>
public sealed record RopeScaling
{
    [JsonPropertyName("type")] public string Type { get; init; } = "linear";
    [JsonPropertyName("factor")] public double Factor { get; init; } = 1.0;
    [JsonPropertyName("low_freq_factor")] public double LowFreqFactor { get; init; } = 1.0;
    [JsonPropertyName("high_freq_factor")] public double HighFreqFactor { get; init; } = 4.0;
    [JsonPropertyName("original_max_position_embeddings")] public int OriginalMaxPositions { get; init; } = 8192;

    public void Validate(string source)
    {
        if (Type is not ("linear" or "llama3")) throw new ArgumentException($"{source}: rope_scaling type '{Type}' is not supported (linear, llama3)");
        if (!(Factor > 0)) throw new ArgumentException($"{source}: rope_scaling factor must be > 0, got {Factor}");
        if (Type == "llama3" && !(HighFreqFactor > LowFreqFactor && LowFreqFactor > 0 && OriginalMaxPositions > 0))
            throw new ArgumentException($"{source}: llama3 rope_scaling needs high_freq_factor > low_freq_factor > 0 and original_max_position_embeddings > 0");
    }

    /// <summary>Scale inverse frequencies (float64, one per rotary pair).</summary>
    public double[] Apply(double[] invFreq)
    {
        if (Type == "linear") return invFreq.Select(f => f / Factor).ToArray();
        double lowWavelen = OriginalMaxPositions / LowFreqFactor, highWavelen = OriginalMaxPositions / HighFreqFactor;
        return invFreq.Select(f =>
        {
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highWavelen) return f;          // high frequencies: unchanged
            if (wavelen > lowWavelen) return f / Factor;  // low frequencies: scaled like linear
            double smooth = (OriginalMaxPositions / wavelen - LowFreqFactor) / (HighFreqFactor - LowFreqFactor);
            return (1 - smooth) * f / Factor + smooth * f;
        }).ToArray();
    }
}
