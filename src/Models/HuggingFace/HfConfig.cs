using System.Text.Json.Nodes;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Models.HuggingFace;

/// <summary>
/// A Hugging Face config.json ↔ this project's <see cref="TransformerConfig"/>, for the families in
/// <see cref="HfFamily"/>. Anything the transformer cannot reproduce exactly (another activation, a head_dim that is not
/// hidden/heads, an unknown rope_scaling type) is an error that names the field, never a silent approximation.
/// </summary>
public static class HfConfig
{
    /// <param name="maxSeqLen">Cap on the context (rotary tables and caches are sized by it); the checkpoint's own
    /// limit when smaller.</param>
    public static (HfFamily Family, TransformerConfig Config) Parse(JsonObject json, string source, int maxSeqLen = 8192)
    {
        // Every field is read with its type checked: a wrong one ("32000" for vocab_size) is an error naming it.
        int Int(string key, int? fallback = null) => json[key] is { } v ? Typed<int>(v, source, key, "an integer")
            : fallback ?? throw new InvalidDataException($"{source}: field '{key}' is missing");
        double Num(string key, double fallback) => json[key] is { } v ? Typed<double>(v, source, key, "a number") : fallback;
        bool Flag(string key, bool fallback) => json[key] is { } v ? Typed<bool>(v, source, key, "true or false") : fallback;
        string? Str(string key, string? fallback) => json[key] is { } v ? Typed<string>(v, source, key, "a string") : fallback;
        var family = HfFamilies.FromModelType(Str("model_type", null), source);

        if (family == HfFamily.Gpt2)
        {
            int d = Int("n_embd");
            string act = Str("activation_function", "gelu_new")!;
            var mlp = act switch
            {
                "gelu_new" or "gelu_pytorch_tanh" => MlpKind.GeluTanh,
                "gelu" => MlpKind.Gelu,
                _ => throw new NotSupportedException($"{source}: activation_function '{act}' is not supported (gelu_new, gelu)"),
            };
            var gpt2 = new TransformerConfig
            {
                VocabSize = Int("vocab_size"),
                DModel = d,
                NLayers = Int("n_layer"),
                NHeads = Int("n_head"),
                NKvHeads = Int("n_head"),
                DFf = Int("n_inner", 4 * d),
                MaxSeqLen = Math.Min(Int("n_positions"), maxSeqLen),
                Norm = NormKind.LayerNorm,
                NormEps = Num("layer_norm_epsilon", 1e-5),
                Mlp = mlp,
                TiedEmbeddings = Flag("tie_word_embeddings", true),
                Bias = true,
                Positions = PositionKind.Learned,
            };
            gpt2.Validate(source);
            return (family, gpt2);
        }

        int hidden = Int("hidden_size"), heads = Int("num_attention_heads");
        if (heads <= 0) throw new InvalidDataException($"{source}: field 'num_attention_heads' must be > 0, got {heads}");
        if (json["head_dim"] is not null && Int("head_dim") is var hd && hd != hidden / heads)
            throw new NotSupportedException($"{source}: head_dim {hd} differs from hidden_size / num_attention_heads = {hidden / heads}");
        string hiddenAct = Str("hidden_act", "silu")!;
        if (hiddenAct != "silu") throw new NotSupportedException($"{source}: hidden_act '{hiddenAct}' is not supported (silu)");
        if (Flag("attention_bias", false) && family != HfFamily.Qwen2)
            throw new NotSupportedException($"{source}: attention_bias true (a bias on o_proj too) is not supported");
        if (Flag("mlp_bias", false)) throw new NotSupportedException($"{source}: mlp_bias true is not supported");
        int context = Int("max_position_embeddings");
        // Mistral and Phi-3 attend within a sliding window; capping the context at the window keeps full attention exact.
        if (Int("sliding_window", 0) is var window && window > 0 && Flag("use_sliding_window", family is HfFamily.Mistral or HfFamily.Phi3))
            context = Math.Min(context, window);
        var config = new TransformerConfig
        {
            VocabSize = Int("vocab_size"),
            DModel = hidden,
            NLayers = Int("num_hidden_layers"),
            NHeads = heads,
            NKvHeads = Int("num_key_value_heads", heads),
            DFf = Int("intermediate_size"),
            MaxSeqLen = Math.Min(context, maxSeqLen),
            Norm = NormKind.RmsNorm,
            NormEps = Num("rms_norm_eps", 1e-6),
            Mlp = MlpKind.SwiGlu,
            TiedEmbeddings = Flag("tie_word_embeddings", false),
            RopeTheta = Num("rope_theta", 10000.0),
            QkvBias = family == HfFamily.Qwen2,
            RopeScaling = ParseRopeScaling(json["rope_scaling"] as JsonObject, source),
        };
        if (Num("partial_rotary_factor", 1.0) is var prf && prf != 1.0)
            throw new NotSupportedException($"{source}: partial_rotary_factor {prf} is not supported");
        config.Validate(source);
        return (family, config);
    }

    private static T Typed<T>(JsonNode node, string source, string key, string expected) =>
        node is JsonValue value && value.TryGetValue<T>(out var typed) && typed is not null ? typed
            : throw new InvalidDataException($"{source}: field '{key}' must be {expected}, got {node.ToJsonString()}");

    private static RopeScaling? ParseRopeScaling(JsonObject? rs, string source)
    {
        if (rs is null) return null;
        string? Str(string key) => rs[key] is { } v ? Typed<string>(v, source, $"rope_scaling.{key}", "a string") : null;
        string type = Str("rope_type") ?? Str("type") ?? "default";
        if (type == "default") return null;
        if (type is not ("linear" or "llama3"))
            throw new NotSupportedException($"{source}: rope_scaling type '{type}' is not supported (default, linear, llama3)");
        // llama3 needs all its fields: a defaulted one would silently change the frequencies.
        double Field(string key) => rs[key] is { } v ? Typed<double>(v, source, $"rope_scaling.{key}", "a number")
            : throw new InvalidDataException($"{source}: rope_scaling.{key} is missing");
        return type == "linear"
            ? new RopeScaling { Type = type, Factor = Field("factor") }
            : new RopeScaling
            {
                Type = type,
                Factor = Field("factor"),
                LowFreqFactor = Field("low_freq_factor"),
                HighFreqFactor = Field("high_freq_factor"),
                OriginalMaxPositions = (int)Field("original_max_position_embeddings"),
            };
    }

    /// <summary>A config.json for <paramref name="c"/> in the family's layout (what transformers' from_pretrained reads).</summary>
    public static JsonObject ToJson(HfFamily family, TransformerConfig c, bool rewardModel, HfTokenIds? tokenIds = null)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(rewardModel ? HfFamilies.SequenceClassificationArchitecture(family) : HfFamilies.CausalLmArchitecture(family)),
            ["model_type"] = HfFamilies.ModelType(family),
            ["vocab_size"] = c.VocabSize,
            ["tie_word_embeddings"] = c.TiedEmbeddings,
            ["torch_dtype"] = "float32",
        };
        if (rewardModel) json["num_labels"] = 1;
        if (tokenIds is { } ids)
        {
            if (ids.Pad is { } pad) json["pad_token_id"] = pad;
            if (ids.Bos is { } bos) json["bos_token_id"] = bos;
            if (ids.Eos is { Count: > 0 } eos) json["eos_token_id"] = eos.Count == 1 ? eos[0] : new JsonArray(eos.Select(e => (JsonNode)e).ToArray());
        }
        if (family == HfFamily.Gpt2)
        {
            json["n_embd"] = c.DModel;
            json["n_layer"] = c.NLayers;
            json["n_head"] = c.NHeads;
            json["n_inner"] = c.DFf;
            json["n_positions"] = c.MaxSeqLen;
            json["layer_norm_epsilon"] = c.NormEps;
            json["activation_function"] = c.Mlp == MlpKind.GeluTanh ? "gelu_new" : "gelu";
            return json;
        }
        json["hidden_size"] = c.DModel;
        json["num_hidden_layers"] = c.NLayers;
        json["num_attention_heads"] = c.NHeads;
        json["num_key_value_heads"] = c.NKvHeads;
        json["intermediate_size"] = c.DFf;
        json["max_position_embeddings"] = c.MaxSeqLen;
        json["rms_norm_eps"] = c.NormEps;
        json["rope_theta"] = c.RopeTheta;
        json["hidden_act"] = "silu";
        if (family is HfFamily.Mistral or HfFamily.Phi3) json["sliding_window"] = c.MaxSeqLen; // the context was capped at it
        if (c.RopeScaling is { } rs)
        {
            json["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = rs.Type,
                ["factor"] = rs.Factor,
                ["low_freq_factor"] = rs.LowFreqFactor,
                ["high_freq_factor"] = rs.HighFreqFactor,
                ["original_max_position_embeddings"] = rs.OriginalMaxPositions,
            };
        }
        return json;
    }
}
