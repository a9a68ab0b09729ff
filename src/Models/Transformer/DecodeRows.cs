using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Which rows of a KV cache a decode step computes, and where their new keys and values go.
/// <list type="bullet">
/// <item>Every row (<see cref="Rows"/> null): the step's input holds one token per cache row, and each row's key and value
/// are scattered at its own position through <see cref="WriteIndex"/> (B, H_kv, 1, D_head).</item>
/// <item>Some rows: the input holds only those rows (a pool shared by several envs, of which only some stepped), so the
/// projections, the MLP and the head, the work that grows with the rows, are paid for them alone. Their keys and values
/// are written through one flat index into the cache seen as (B·H_kv·capacity, D_head). Attention runs over every cache
/// row with the absent rows' queries at zero and their outputs dropped: each row reads only its own keys, so the absent
/// rows change nothing, and this spares a copy of the present rows' keys and values.</item>
/// </list>
/// </summary>
internal readonly record struct DecodeRows(Tensor WriteIndex, Tensor? Rows, long CacheRows)
{
    /// <summary>Store the step's keys or values (n, H_kv, 1, D_head) in a cache layer (B, H_kv, capacity, D_head).</summary>
    public void Write(Tensor cacheLayer, Tensor kv)
    {
        if (Rows is null) cacheLayer.scatter_(2, WriteIndex, kv);
        else cacheLayer.view(-1, kv.shape[^1]).index_copy_(0, WriteIndex, kv.reshape(-1, kv.shape[^1]));
    }

    /// <summary>The step's queries (n, H, 1, D_head) as every cache row's, zero where a row is absent.</summary>
    public Tensor Spread(Tensor q) =>
        Rows is null ? q : q.new_zeros([CacheRows, q.shape[1], q.shape[2], q.shape[3]]).index_copy_(0, Rows, q);

    /// <summary>The present rows' part of an attention output over every cache row.</summary>
    public Tensor Pick(Tensor y) => Rows is null ? y : y.index_select(0, Rows);
}
