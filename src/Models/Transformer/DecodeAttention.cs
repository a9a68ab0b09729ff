namespace RlhfGym.Models.Transformer;

/// <summary>
/// How a decode step computes single-query attention over the KV cache. All three give the same numbers (within fp32
/// rounding); they differ in speed by shape and backend, which `rlhfgym bench decode` measures side by side.
/// </summary>
public enum DecodeAttention
{
    /// <summary>The kernel measured fastest for the step's device (see <see cref="DecodeAttentionKernels.Resolve"/>).</summary>
    Auto,
    /// <summary>scaled_dot_product_attention with the cache's additive key mask (grouped KV heads expanded to every query head).</summary>
    Sdpa,
    /// <summary>softmax(q·Kᵀ/√d + bias)·V as two batched matmuls, grouped heads as a view (no copy).</summary>
    Matmul,
    /// <summary>The same as broadcast multiplies and sums over the head dimension and the keys.</summary>
    Reduce,
}

public static class DecodeAttentionKernels
{
    /// <summary>
    /// The kernel Auto means. Matmul was the fastest on this CPU at d64 and d256 in `bench decode` (spans up to 137;
    /// docs/benchmarks.md), and two batched matmuls are also how GPU decoders attend, so it is the choice everywhere.
    /// </summary>
    public static DecodeAttention Resolve(DecodeAttention kernel) => kernel == DecodeAttention.Auto ? DecodeAttention.Matmul : kernel;

    /// <summary>Parse a kernel name as the CLI and configs spell it (auto, sdpa, matmul, reduce).</summary>
    public static DecodeAttention Parse(string name, string what = "decode attention") => name.Trim().ToLowerInvariant() switch
    {
        "auto" => DecodeAttention.Auto,
        "sdpa" => DecodeAttention.Sdpa,
        "matmul" => DecodeAttention.Matmul,
        "reduce" => DecodeAttention.Reduce,
        _ => throw new ArgumentException($"{what}: unknown attention kernel '{name}' (auto, sdpa, matmul, reduce)"),
    };

    public static string Name(DecodeAttention kernel) => kernel.ToString().ToLowerInvariant();
}
