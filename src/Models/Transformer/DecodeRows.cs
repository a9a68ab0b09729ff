using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Which rows of a KV cache a decode step computes, and where their new keys and values go: <see cref="WriteIndex"/>
/// holds slot (row, head, position) of a cache layer seen as (B·H_kv·capacity, D_head) for each row and then each head,
/// the order of the step's (n, H_kv, 1, D_head) keys, so one index_copy_ of n·H_kv rows of D_head writes them (a
/// scatter along the slots would read an index as large as the keys).
/// <list type="bullet">
/// <item>Every row (<see cref="Rows"/> null): the step's input holds one token per cache row.</item>
/// <item>Some rows: the input holds only those rows (a pool shared by several envs, of which only some stepped), so the
/// projections, the MLP and the head, the work that grows with the rows, are paid for them alone. Attention runs over
/// every cache row with the absent rows' outputs dropped: each row reads only its own keys, so
/// the absent rows change nothing, and this spares a copy of the present rows' keys and values.</item>
/// </list>
/// </summary>
/// <param name="Queries">With some rows: the cache's (B, H, 1, D_head) query buffer, made once with the cache (zeros); each
/// layer copies its present rows' queries into it. The absent rows hold whatever an earlier step left there (finite), and
/// their outputs are dropped: attention is row by row, so they change no present row's result.</param>
internal readonly record struct DecodeRows(Tensor WriteIndex, Tensor? Rows, Tensor? Queries)
{
    /// <summary>Store the step's keys or values (n, H_kv, 1, D_head) in a cache layer (B, H_kv, capacity, D_head).</summary>
    public void Write(Tensor cacheLayer, Tensor kv)
    {
        cacheLayer.view(-1, kv.shape[^1]).index_copy_(0, WriteIndex, kv.reshape(-1, kv.shape[^1]));
    }

    /// <summary>The step's queries (n, H, 1, D_head) as every cache row's; an absent row's are left over and unused.</summary>
    public Tensor Spread(Tensor q) => Rows is null ? q : Queries!.index_copy_(0, Rows, q);

    /// <summary>The present rows' part of an attention output over every cache row.</summary>
    public Tensor Pick(Tensor y) => Rows is null ? y : y.index_select(0, Rows);
}
