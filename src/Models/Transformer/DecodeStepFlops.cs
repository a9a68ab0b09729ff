namespace RlhfGym.Models.Transformer;

/// <summary>
/// Floating-point operations of one decode step (one new token per row through the KV cache), counted the usual way:
/// a multiply-add is 2 FLOPs, only matrix products and attention are counted (norms, rotary, activations and the
/// softmax are a few per element and left out, as in the PaLM/Chinchilla accounting).
/// </summary>
public static class DecodeStepFlops
{
    /// <summary>The step's projections and MLP as (rows, inner, cols) products, layer by layer; the LM head last when asked.</summary>
    public static IEnumerable<(long Rows, long Inner, long Cols)> Gemms(TransformerConfig c, long batch, bool lmHead)
    {
        long q = c.NHeads * c.HeadDim, kv = c.NKvHeads * c.HeadDim;
        for (int layer = 0; layer < c.NLayers; layer++)
        {
            yield return (batch, c.DModel, q);
            yield return (batch, c.DModel, kv);
            yield return (batch, c.DModel, kv);
            yield return (batch, q, c.DModel);
            if (c.Mlp == MlpKind.SwiGlu) yield return (batch, c.DModel, c.DFf);
            yield return (batch, c.DModel, c.DFf);
            yield return (batch, c.DFf, c.DModel);
        }
        if (lmHead) yield return (batch, c.DModel, c.VocabSize);
    }

    /// <summary>FLOPs of the step's matrix products (<see cref="Gemms"/>).</summary>
    public static double Matmul(TransformerConfig c, long batch, bool lmHead) =>
        Gemms(c, batch, lmHead).Sum(g => 2.0 * g.Rows * g.Inner * g.Cols);

    /// <summary>Attention FLOPs when every row attends over span keys: q·Kᵀ and weights·V for each query head.</summary>
    public static double Attention(TransformerConfig c, long batch, long span) =>
        2.0 * 2.0 * batch * c.NLayers * c.NHeads * c.HeadDim * span;

    /// <summary>A whole step: matrix products plus attention over span keys.</summary>
    public static double Step(TransformerConfig c, long batch, long span, bool lmHead) => Matmul(c, batch, lmHead) + Attention(c, batch, span);
}
