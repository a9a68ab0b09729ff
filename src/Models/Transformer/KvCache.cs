using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Preallocated key/value cache for a batch whose rows may hold different numbers of tokens.
/// Row b's tokens occupy slots 0..Lengths[b]-1 of every layer; a decode step writes slot Lengths[b] of each row
/// (its own position) and attends over slots 0..Lengths[b]. The keys and values are never reallocated while decoding:
/// the positions and the slot-visibility mask are device tensors updated in place, and a step derives its write index
/// (one int64 per row and head) from the positions and a table of slots made once.
/// </summary>
public sealed class KvCache : IDisposable
{
    public int BatchSize { get; }
    public int Capacity { get; }
    private readonly TransformerConfig _config;
    private readonly ScalarType _dtype;
    internal Tensor[] Keys { get; }    // per layer (B, H_kv, Capacity, D_head)
    internal Tensor[] Values { get; }
    private readonly long[] _lengthStore; // host copy: tokens held per row (a row range's: its parent's array)
    private readonly int _firstRow;        // where this cache's rows start in _lengthStore (a row range's offset)
    private readonly KvCache? _parent;     // set on a row range (RowRange): a view, owning no storage
    private readonly Tensor _slots;    // arange(Capacity) on the device
    private readonly Tensor _rowHeadSlots; // (B, H_kv) int64: where slot 0 of (row, head) is in a layer seen as (B·H_kv·Capacity, D_head)
    private readonly Tensor _keyBias;  // (B, Capacity) in the cache's dtype: 0 where slot j holds a real token of row b, else -inf
    private readonly Tensor _zero;     // (B, 1) zeros in the cache's dtype, the source for unmasking one slot per row
    private readonly Tensor _rowIndex; // Positions viewed as (B, 1)
    private readonly Tensor _queries;  // (B, H, 1, D_head): a masked step's queries of every row (DecodeRows.Spread)
    internal Tensor Positions { get; }  // (B) int64 on the device: next write slot per row

    internal KvCache(TransformerConfig config, int batchSize, int capacity, Device device, ScalarType dtype)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be > 0");
        if (capacity <= 0 || capacity > config.MaxSeqLen)
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"cache capacity must be in 1..max_seq_len ({config.MaxSeqLen})");
        BatchSize = batchSize;
        Capacity = capacity;
        _config = config;
        _dtype = dtype;
        Keys = new Tensor[config.NLayers];
        Values = new Tensor[config.NLayers];
        for (int i = 0; i < config.NLayers; i++)
        {
            Keys[i] = zeros([batchSize, config.NKvHeads, capacity, config.HeadDim], dtype, device);
            Values[i] = zeros([batchSize, config.NKvHeads, capacity, config.HeadDim], dtype, device);
        }
        _lengthStore = new long[batchSize];
        _slots = arange(capacity, ScalarType.Int64, device);
        using (var scope = NewDisposeScope())
            _rowHeadSlots = arange(batchSize, ScalarType.Int64, device).mul_((long)config.NKvHeads * capacity).unsqueeze(1)
                .add(arange(config.NKvHeads, ScalarType.Int64, device).mul_(capacity)).MoveToOuterDisposeScope();
        _keyBias = full([batchSize, capacity], double.NegativeInfinity, dtype, device);
        _zero = zeros([batchSize, 1], dtype, device);
        _queries = zeros([batchSize, config.NHeads, 1, config.HeadDim], dtype, device);
        Positions = zeros(batchSize, ScalarType.Int64, device);
        _rowIndex = Positions.view(batchSize, 1);
        // The cache outlives whatever dispose scope it was created in; it disposes its own tensors.
        foreach (var t in Keys.Concat(Values).Append(_slots).Append(_rowHeadSlots).Append(_keyBias).Append(_zero).Append(_queries).Append(Positions).Append(_rowIndex))
            t.DetachFromDisposeScope();
    }

    /// <summary>Tokens held by each row (host copy; no device sync).</summary>
    public ReadOnlySpan<long> Lengths => _lengthStore.AsSpan(_firstRow, BatchSize);

    private Span<long> HostLengths => _lengthStore.AsSpan(_firstRow, BatchSize);

    /// <summary>
    /// Rows start..start+count-1 of this cache as a cache of their own that shares its storage (no copy): a decode step
    /// through it reads and writes those rows only, so a pool shared by several envs steps just the span of rows that
    /// take part. Create it once per span and reuse it; dispose it before the cache.
    /// </summary>
    public KvCache RowRange(int start, int count) => new(this, start, count);

    private KvCache(KvCache parent, int start, int count)
    {
        if (start < 0 || count <= 0 || start + count > parent.BatchSize)
            throw new ArgumentOutOfRangeException(nameof(count), $"rows {start}..{start + count - 1} are not within the cache's 0..{parent.BatchSize - 1}");
        _parent = parent;
        BatchSize = count;
        Capacity = parent.Capacity;
        _config = parent._config;
        _dtype = parent._dtype;
        _lengthStore = parent._lengthStore;
        _firstRow = parent._firstRow + start;
        Keys = parent.Keys.Select(k => k.narrow(0, start, count)).ToArray();
        Values = parent.Values.Select(v => v.narrow(0, start, count)).ToArray();
        _slots = parent._slots;
        _rowHeadSlots = parent._rowHeadSlots.narrow(0, 0, count); // a row range's layers are seen from its own first row
        _keyBias = parent._keyBias.narrow(0, start, count);
        _zero = parent._zero.narrow(0, 0, count);
        _queries = parent._queries.narrow(0, 0, count);
        Positions = parent.Positions.narrow(0, start, count);
        _rowIndex = Positions.view(count, 1);
        foreach (var t in Keys.Concat(Values).Append(_rowHeadSlots).Append(_keyBias).Append(_zero).Append(_queries).Append(Positions).Append(_rowIndex))
            t.DetachFromDisposeScope();
        MaxLength = Longest(HostLengths);
    }

    private static long Longest(ReadOnlySpan<long> lengths)
    {
        long max = 0;
        foreach (long l in lengths) max = Math.Max(max, l);
        return max;
    }

    // A row range's rows grew: so may its parent's longest row.
    private void Grew()
    {
        for (var p = _parent; p is not null; p = p._parent) p.MaxLength = Math.Max(p.MaxLength, MaxLength);
    }

    /// <summary>The longest row: attention over the cache reads slots 0..MaxLength-1.</summary>
    public long MaxLength { get; private set; }

    /// <summary>Set every row's length after a prefill of right-padded prompts.</summary>
    internal void SetLengths(ReadOnlySpan<long> lengths)
    {
        if (lengths.Length != BatchSize)
            throw new ArgumentException($"expected {BatchSize} lengths, got {lengths.Length}", nameof(lengths));
        long max = 0;
        for (int b = 0; b < BatchSize; b++)
        {
            if (lengths[b] < 1 || lengths[b] > Capacity)
                throw new ArgumentOutOfRangeException(nameof(lengths), lengths[b], $"row {b}: length must be in 1..{Capacity}");
            HostLengths[b] = lengths[b];
            max = Math.Max(max, lengths[b]);
        }
        MaxLength = max;
        using var host = tensor(HostLengths.ToArray(), ScalarType.Int64);
        Positions.copy_(host);
        using var visible = _slots.unsqueeze(0).lt(_rowIndex);
        _keyBias.fill_(double.NegativeInfinity).masked_fill_(visible, 0);
    }

    /// <summary>
    /// Replace some rows with the rows of another cache of the same shape (e.g. a fresh prefill of new prompts for the
    /// rows of a batch whose episodes ended), leaving the other rows untouched.
    /// </summary>
    internal void CopyRowsFrom(KvCache source, ReadOnlySpan<long> rows)
    {
        if (source.BatchSize != rows.Length || source.Capacity != Capacity || source.Keys.Length != Keys.Length)
            throw new ArgumentException($"source cache must hold {rows.Length} rows of capacity {Capacity}");
        using var index = tensor(rows.ToArray(), ScalarType.Int64, _slots.device);
        for (int i = 0; i < Keys.Length; i++)
        {
            Keys[i].index_copy_(0, index, source.Keys[i]);
            Values[i].index_copy_(0, index, source.Values[i]);
        }
        Positions.index_copy_(0, index, source.Positions);
        _keyBias.index_copy_(0, index, source._keyBias);
        for (int r = 0; r < rows.Length; r++)
        {
            if (rows[r] < 0 || rows[r] >= BatchSize) throw new ArgumentOutOfRangeException(nameof(rows), rows[r], $"row must be in 0..{BatchSize - 1}");
            HostLengths[(int)rows[r]] = source.Lengths[r];
        }
        MaxLength = Longest(HostLengths);
    }

    /// <summary>
    /// A new cache of <paramref name="batchSize"/> rows whose row i holds this cache's row sourceRows[i] (for i below
    /// sourceRows.Length) and whose other rows are empty: how a pool of rows shared by several envs grows or shrinks.
    /// </summary>
    public KvCache Regrouped(ReadOnlySpan<long> sourceRows, int batchSize)
    {
        if (sourceRows.Length > batchSize) throw new ArgumentException($"{sourceRows.Length} rows do not fit a cache of {batchSize}");
        var device = _slots.device;
        var grown = new KvCache(_config, batchSize, Capacity, device, _dtype);
        if (sourceRows.IsEmpty) return grown;
        using var scope = NewDisposeScope();
        var from = tensor(sourceRows.ToArray(), ScalarType.Int64, device);
        int n = sourceRows.Length;
        for (int i = 0; i < Keys.Length; i++)
        {
            grown.Keys[i].narrow(0, 0, n).copy_(Keys[i].index_select(0, from));
            grown.Values[i].narrow(0, 0, n).copy_(Values[i].index_select(0, from));
        }
        grown.Positions.narrow(0, 0, n).copy_(Positions.index_select(0, from));
        grown._keyBias.narrow(0, 0, n).copy_(_keyBias.index_select(0, from));
        for (int r = 0; r < n; r++) grown.HostLengths[r] = Lengths[(int)sourceRows[r]];
        grown.MaxLength = Longest(grown.HostLengths);
        return grown;
    }

    /// <summary>A decode step of every row: each writes its keys and values at its own position.</summary>
    internal DecodeRows EveryRow() => new(_rowHeadSlots.add(_rowIndex).view(-1), null, null);

    /// <summary>A decode step of only the given rows (indices into this cache) at their positions.</summary>
    internal DecodeRows SomeRows(Tensor rows, Tensor positions) =>
        new(_rowHeadSlots.index_select(0, rows).add_(positions.unsqueeze(1)).view(-1), rows, _queries);

    /// <summary>Check there is room for one more token in every row (called before a decode step).</summary>
    internal void EnsureRoomForOneMore()
    {
        if (_parent is not null) MaxLength = Longest(HostLengths); // its parent's rows may have been prefilled since
        if (MaxLength >= Capacity)
            throw new InvalidOperationException($"KV cache is full: a row holds {MaxLength} tokens and the capacity is {Capacity}");
    }

    /// <summary>
    /// What a decode step's attention adds to its scores: 0 where slot j is visible to row b (j ≤ Lengths[b]), -inf
    /// elsewhere. Unmasks each row's new slot in place (one scatter) and returns a (B, 1, 1, MaxLength+1) view; every
    /// kernel reads the same bias (SDPA takes it as a float mask), so a model may switch kernels between steps.
    /// </summary>
    internal Tensor StepKeyBias()
    {
        _keyBias.scatter_(1, _rowIndex, _zero);
        return _keyBias.narrow(1, 0, MaxLength + 1).unsqueeze(1).unsqueeze(1);
    }

    /// <summary>After a decode step every row holds one more token.</summary>
    internal void Advance()
    {
        var lengths = HostLengths;
        for (int b = 0; b < lengths.Length; b++) lengths[b]++;
        MaxLength++;
        Positions.add_(HeldScalars.One);
        Grew();
    }

    /// <summary>
    /// After a decode step of which only some rows take part, those rows hold one more token and the others are as they
    /// were. (The step unmasked the others' next slot too; their next real step writes that slot before reading it.)
    /// </summary>
    internal void Advance(RowMask only)
    {
        var lengths = HostLengths;
        long max = 0;
        for (int b = 0; b < lengths.Length; b++)
        {
            if (only.Host[b]) lengths[b]++;
            max = Math.Max(max, lengths[b]);
        }
        MaxLength = max;
        Positions.add_(only.Steps);
        Grew();
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
        if (_parent is null) _slots.Dispose(); // a row range shares its parent's
        _rowHeadSlots.Dispose();
        _keyBias.Dispose();
        _zero.Dispose();
        _queries.Dispose();
        _rowIndex.Dispose();
        Positions.Dispose();
    }
}
