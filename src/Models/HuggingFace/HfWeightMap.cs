using System.Text.RegularExpressions;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.HuggingFace;

/// <summary>
/// Tensor names and layouts between a Hugging Face checkpoint and this project's modules. GPT-2 stores its
/// projections as Conv1D (in × out, the transpose of a Linear) with q, k and v fused; Phi-3 fuses qkv and gate/up.
/// Buffers that are not weights (causal-mask "attn.bias", rotary "inv_freq") are skipped.
/// </summary>
public static partial class HfWeightMap
{
    public const string ScoreWeight = "score.weight";

    /// <summary>Whether a checkpoint tensor is a buffer, not a weight.</summary>
    public static bool IsIgnored(string name) => name.EndsWith(".attn.bias", StringComparison.Ordinal)
        || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <summary>One checkpoint tensor → this project's parameter names and tensors (a fused tensor gives several).</summary>
    public static IEnumerable<(string Name, Tensor Value)> FromHf(HfFamily family, TransformerConfig c, string name, Tensor t)
    {
        if (name == ScoreWeight) return [(ScoreWeight, t)];
        return family == HfFamily.Gpt2 ? Gpt2FromHf(c, name, t) : LlamaFromHf(family, c, name, t);
    }

    /// <summary>This project's named parameters → the checkpoint's tensors, in a stable order.</summary>
    public static IEnumerable<(string Name, Tensor Value)> ToHf(HfFamily family, TransformerConfig c, IReadOnlyDictionary<string, Tensor> ours)
    {
        if (family == HfFamily.Gpt2)
        {
            yield return ("transformer.wte.weight", ours["embed.weight"]);
            yield return ("transformer.wpe.weight", ours["pos_embed.weight"]);
            for (int i = 0; i < c.NLayers; i++)
            {
                string b = $"blocks.{i}.", h = $"transformer.h.{i}.";
                foreach (var p in new[] { "weight", "bias" })
                {
                    yield return (h + "ln_1." + p, ours[b + "attn_norm." + p]);
                    yield return (h + "ln_2." + p, ours[b + "mlp_norm." + p]);
                }
                yield return (h + "attn.c_attn.weight", cat([ours[b + "attn.q_proj.weight"], ours[b + "attn.k_proj.weight"], ours[b + "attn.v_proj.weight"]], 0).t().contiguous());
                yield return (h + "attn.c_attn.bias", cat([ours[b + "attn.q_proj.bias"], ours[b + "attn.k_proj.bias"], ours[b + "attn.v_proj.bias"]], 0));
                yield return (h + "attn.c_proj.weight", ours[b + "attn.o_proj.weight"].t().contiguous());
                yield return (h + "attn.c_proj.bias", ours[b + "attn.o_proj.bias"]);
                yield return (h + "mlp.c_fc.weight", ours[b + "mlp.up_proj.weight"].t().contiguous());
                yield return (h + "mlp.c_fc.bias", ours[b + "mlp.up_proj.bias"]);
                yield return (h + "mlp.c_proj.weight", ours[b + "mlp.down_proj.weight"].t().contiguous());
                yield return (h + "mlp.c_proj.bias", ours[b + "mlp.down_proj.bias"]);
            }
            yield return ("transformer.ln_f.weight", ours["norm.weight"]);
            yield return ("transformer.ln_f.bias", ours["norm.bias"]);
        }
        else
        {
            yield return ("model.embed_tokens.weight", ours["embed.weight"]);
            for (int i = 0; i < c.NLayers; i++)
            {
                string b = $"blocks.{i}.", h = $"model.layers.{i}.";
                yield return (h + "input_layernorm.weight", ours[b + "attn_norm.weight"]);
                yield return (h + "post_attention_layernorm.weight", ours[b + "mlp_norm.weight"]);
                if (family == HfFamily.Phi3)
                {
                    yield return (h + "self_attn.qkv_proj.weight", cat([ours[b + "attn.q_proj.weight"], ours[b + "attn.k_proj.weight"], ours[b + "attn.v_proj.weight"]], 0));
                    yield return (h + "mlp.gate_up_proj.weight", cat([ours[b + "mlp.gate_proj.weight"], ours[b + "mlp.up_proj.weight"]], 0));
                }
                else
                {
                    foreach (var proj in new[] { "q_proj", "k_proj", "v_proj" })
                    {
                        yield return (h + "self_attn." + proj + ".weight", ours[b + "attn." + proj + ".weight"]);
                        if (c.QkvBias) yield return (h + "self_attn." + proj + ".bias", ours[b + "attn." + proj + ".bias"]);
                    }
                    yield return (h + "mlp.gate_proj.weight", ours[b + "mlp.gate_proj.weight"]);
                    yield return (h + "mlp.up_proj.weight", ours[b + "mlp.up_proj.weight"]);
                }
                yield return (h + "self_attn.o_proj.weight", ours[b + "attn.o_proj.weight"]);
                yield return (h + "mlp.down_proj.weight", ours[b + "mlp.down_proj.weight"]);
            }
            yield return ("model.norm.weight", ours["norm.weight"]);
        }
        if (!c.TiedEmbeddings) yield return ("lm_head.weight", ours["lm_head.weight"]);
        if (ours.TryGetValue(ScoreWeight, out var score)) yield return (ScoreWeight, score);
    }

    [GeneratedRegex(@"^(?:transformer\.)?h\.(\d+)\.(.+)$")]
    private static partial Regex Gpt2Layer();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LlamaLayer();

    private static IEnumerable<(string, Tensor)> Gpt2FromHf(TransformerConfig c, string name, Tensor t)
    {
        string n = name.StartsWith("transformer.", StringComparison.Ordinal) ? name["transformer.".Length..] : name;
        switch (n)
        {
            case "wte.weight": return [("embed.weight", t)];
            case "wpe.weight":
                Expect(t, [-1, c.DModel]);
                return [("pos_embed.weight", t.shape[0] > c.MaxSeqLen ? t.narrow(0, 0, c.MaxSeqLen) : t)]; // context capped below n_positions
            case "ln_f.weight": return [("norm.weight", t)];
            case "ln_f.bias": return [("norm.bias", t)];
            case "lm_head.weight": return c.TiedEmbeddings ? [] : [("lm_head.weight", t)];
        }
        var m = Gpt2Layer().Match(n);
        if (!m.Success) return [(Unknown(name), t)];
        string b = $"blocks.{m.Groups[1].Value}.";
        switch (m.Groups[2].Value)
        {
            case "ln_1.weight": return [(b + "attn_norm.weight", t)];
            case "ln_1.bias": return [(b + "attn_norm.bias", t)];
            case "ln_2.weight": return [(b + "mlp_norm.weight", t)];
            case "ln_2.bias": return [(b + "mlp_norm.bias", t)];
            case "attn.c_attn.weight":
                {
                    Expect(t, [c.DModel, 3L * c.DModel]);
                    var qkv = t.t().chunk(3, 0); // Conv1D (D, 3D) → Linear (3D, D) → q, k, v
                    return [(b + "attn.q_proj.weight", qkv[0]), (b + "attn.k_proj.weight", qkv[1]), (b + "attn.v_proj.weight", qkv[2])];
                }
            case "attn.c_attn.bias":
                {
                    Expect(t, [3L * c.DModel]);
                    var qkv = t.chunk(3, 0);
                    return [(b + "attn.q_proj.bias", qkv[0]), (b + "attn.k_proj.bias", qkv[1]), (b + "attn.v_proj.bias", qkv[2])];
                }
            case "attn.c_proj.weight": return [(b + "attn.o_proj.weight", t.t())];
            case "attn.c_proj.bias": return [(b + "attn.o_proj.bias", t)];
            case "mlp.c_fc.weight": return [(b + "mlp.up_proj.weight", t.t())];
            case "mlp.c_fc.bias": return [(b + "mlp.up_proj.bias", t)];
            case "mlp.c_proj.weight": return [(b + "mlp.down_proj.weight", t.t())];
            case "mlp.c_proj.bias": return [(b + "mlp.down_proj.bias", t)];
            default: return [(Unknown(name), t)];
        }
    }

    private static IEnumerable<(string, Tensor)> LlamaFromHf(HfFamily family, TransformerConfig c, string name, Tensor t)
    {
        switch (name)
        {
            case "model.embed_tokens.weight": return [("embed.weight", t)];
            case "model.norm.weight": return [("norm.weight", t)];
            case "lm_head.weight": return c.TiedEmbeddings ? [] : [("lm_head.weight", t)];
        }
        var m = LlamaLayer().Match(name);
        if (!m.Success) return [(Unknown(name), t)];
        string b = $"blocks.{m.Groups[1].Value}.", rest = m.Groups[2].Value;
        switch (rest)
        {
            case "input_layernorm.weight": return [(b + "attn_norm.weight", t)];
            case "post_attention_layernorm.weight": return [(b + "mlp_norm.weight", t)];
            case "self_attn.qkv_proj.weight" when family == HfFamily.Phi3:
                {
                    long q = c.NHeads * c.HeadDim, kv = c.NKvHeads * c.HeadDim;
                    Expect(t, [q + 2 * kv, c.DModel]); // the head counts of config.json decide where k and v start
                    return [(b + "attn.q_proj.weight", t.narrow(0, 0, q)), (b + "attn.k_proj.weight", t.narrow(0, q, kv)), (b + "attn.v_proj.weight", t.narrow(0, q + kv, kv))];
                }
            case "mlp.gate_up_proj.weight" when family == HfFamily.Phi3:
                {
                    Expect(t, [2L * c.DFf, c.DModel]);
                    var gateUp = t.chunk(2, 0);
                    return [(b + "mlp.gate_proj.weight", gateUp[0]), (b + "mlp.up_proj.weight", gateUp[1])];
                }
        }
        var attn = Regex.Match(rest, @"^self_attn\.([qkvo]_proj)\.(weight|bias)$");
        if (attn.Success) return [($"{b}attn.{attn.Groups[1].Value}.{attn.Groups[2].Value}", t)];
        var mlp = Regex.Match(rest, @"^mlp\.(gate_proj|up_proj|down_proj)\.weight$");
        if (mlp.Success) return [($"{b}mlp.{mlp.Groups[1].Value}.weight", t)];
        return [(Unknown(name), t)];
    }

    // A fused tensor is split by position, so a wrong size would cut its parts in the wrong places yet give them shapes
    // that fit: its whole shape is checked first (-1: any length).
    private static void Expect(Tensor t, long[] shape)
    {
        bool fits = t.shape.Length == shape.Length && t.shape.Zip(shape).All(p => p.Second < 0 || p.First == p.Second);
        if (!fits)
            throw new ArgumentException($"expected shape [{string.Join(", ", shape.Select(d => d < 0 ? "any" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}] from config.json, got [{string.Join(", ", t.shape)}]");
    }

    /// <summary>A marker name for a checkpoint tensor with no place in the model (the loader reports it).</summary>
    public static string Unknown(string name) => "?" + name;
}
