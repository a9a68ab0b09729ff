using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>Multi-head causal self-attention with rotary positions and optional grouped-query attention.</summary>
public sealed class CausalSelfAttention : nn.Module
{
    private readonly int _nHeads, _nKvHeads, _headDim;
    private readonly Scalar _scale; // 1/√d_head, held (HeldScalars)
    public Linear q_proj, k_proj, v_proj, o_proj;

    public CausalSelfAttention(TransformerConfig c) : base(nameof(CausalSelfAttention))
    {
        _nHeads = c.NHeads;
        _nKvHeads = c.NKvHeads;
        _headDim = c.HeadDim;
        _scale = (1.0 / Math.Sqrt(_headDim)).ToScalar();
        q_proj = nn.Linear(c.DModel, c.NHeads * c.HeadDim, hasBias: c.Bias || c.QkvBias);
        k_proj = nn.Linear(c.DModel, c.NKvHeads * c.HeadDim, hasBias: c.Bias || c.QkvBias);
        v_proj = nn.Linear(c.DModel, c.NKvHeads * c.HeadDim, hasBias: c.Bias || c.QkvBias);
        o_proj = nn.Linear(c.NHeads * c.HeadDim, c.DModel, hasBias: c.Bias);
        RegisterComponents();
    }

    /// <summary>
    /// Attend over a whole sequence x (B, T, D). mask: null for plain causal attention, else a boolean (B, 1, T, T)
    /// that is true where a query may see a key. With a cache layer, the keys and values of all T positions are also
    /// stored in slots 0..T-1 (a prefill).
    /// </summary>
    public Tensor Sequence(Tensor x, RotaryAngles rope, Tensor? mask, Tensor? cacheK = null, Tensor? cacheV = null)
    {
        long b = x.shape[0], t = x.shape[1];
        var q = rope.Apply(Heads(q_proj.forward(x), b, t, _nHeads));
        var k = rope.Apply(Heads(k_proj.forward(x), b, t, _nKvHeads));
        var v = Heads(v_proj.forward(x), b, t, _nKvHeads);
        if (cacheK is not null && cacheV is not null)
        {
            cacheK.narrow(2, 0, t).copy_(k);
            cacheV.narrow(2, 0, t).copy_(v);
        }
        var y = nn.functional.scaled_dot_product_attention(q, ExpandKv(k), ExpandKv(v), mask, 0.0, mask is null);
        return o_proj.forward(y.transpose(1, 2).reshape(b, t, _nHeads * _headDim));
    }

    /// <summary>
    /// One decode step: x (n, 1, D) for the cache rows <paramref name="rows"/> names (every row, or some), rope already
    /// gathered for each row's position. Writes the new key/value into the cache at each row's position and attends over
    /// slots 0..span-1 with <paramref name="kernel"/>, adding keyBias (B, 1, 1, span: 0 where a slot is visible, -inf
    /// elsewhere). Returns (n, 1, D).
    /// </summary>
    internal Tensor Step(Tensor x, RotaryAngles rope, DecodeRows rows, Tensor cacheK, Tensor cacheV, Tensor keyBias, long span,
        DecodeAttention kernel)
    {
        long n = x.shape[0];
        var q = rope.Apply(Heads(q_proj.forward(x), n, 1, _nHeads));
        var k = rope.Apply(Heads(k_proj.forward(x), n, 1, _nKvHeads));
        var v = Heads(v_proj.forward(x), n, 1, _nKvHeads);
        rows.Write(cacheK, k);
        rows.Write(cacheV, v);
        var keys = cacheK.narrow(2, 0, span);
        var values = cacheV.narrow(2, 0, span);
        var queries = rows.Spread(q);
        var y = kernel switch
        {
            DecodeAttention.Matmul => MatmulAttention(queries, keys, values, keyBias),
            DecodeAttention.Reduce => ReduceAttention(queries, keys, values, keyBias),
            _ => nn.functional.scaled_dot_product_attention(queries, ExpandKv(keys), ExpandKv(values), keyBias, 0.0, false),
        };
        return o_proj.forward(rows.Pick(y).reshape(n, 1, _nHeads * _headDim));
    }

    // Single-query attention with grouped heads as a view: q (B, H, 1, Dh) → (B, H_kv, group, Dh) against the cache's
    // (B, H_kv, span, Dh), so a key/value head is read once for all the query heads it serves. Returns (B, H, 1, Dh).
    private Tensor MatmulAttention(Tensor q, Tensor keys, Tensor values, Tensor keyBias)
    {
        long b = q.shape[0];
        var scores = q.reshape(b, _nKvHeads, _nHeads / _nKvHeads, _headDim).matmul(keys.transpose(2, 3));
        var weights = scores.mul_(_scale).add_(keyBias).softmax(-1);
        return weights.matmul(values);
    }

    private Tensor ReduceAttention(Tensor q, Tensor keys, Tensor values, Tensor keyBias)
    {
        long b = q.shape[0];
        var grouped = q.reshape(b, _nKvHeads, _nHeads / _nKvHeads, 1, _headDim);             // (B, H_kv, G, 1, Dh)
        var scores = grouped.mul(keys.unsqueeze(2)).sum([-1L]);                               // (B, H_kv, G, span)
        var weights = scores.mul_(_scale).add_(keyBias).softmax(-1);
        return weights.unsqueeze(-1).mul(values.unsqueeze(2)).sum([-2L]);                     // (B, H_kv, G, Dh)
    }

    private Tensor Heads(Tensor x, long b, long t, int heads) => x.view(b, t, heads, _headDim).transpose(1, 2);

    // Grouped-query attention: each key/value head serves n_heads / n_kv_heads query heads.
    private Tensor ExpandKv(Tensor kv)
    {
        if (_nKvHeads == _nHeads) return kv;
        long b = kv.shape[0], s = kv.shape[2];
        int group = _nHeads / _nKvHeads;
        return kv.unsqueeze(2).expand(b, _nKvHeads, group, s, _headDim).reshape(b, _nHeads, s, _headDim);
    }
}
