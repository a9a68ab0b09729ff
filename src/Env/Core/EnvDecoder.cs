using System.Runtime.InteropServices;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>
/// The per-token work of <see cref="TextVectorEnv"/>: the bundle's frozen reference LM and reward model stepping a pool
/// of rows through their KV caches. An env takes rows of the pool (<see cref="Attach"/>), writes its tokens into
/// <see cref="Feed"/> / <see cref="RewardFeed"/> at its rows and reads the readings back after <see cref="Advance"/>.
/// A lone env owns a decoder of exactly its rows. A server shares one decoder among its sessions on the same bundle and
/// cache capacity (<see cref="EnvDecoders"/>), so the sessions that step together cost one batched forward
/// (<see cref="TextVectorEnv.StepTogether"/>), computing only the rows of the sessions that stepped.
/// </summary>
public sealed class EnvDecoder : IDisposable
{
    public EnvBundle Bundle { get; }
    public Device Device { get; }
    /// <summary>Tokens a row can hold: the longest prompt plus max_new_tokens plus one.</summary>
    public int Capacity { get; }
    public ScoringPipeline Scoring { get; }

    private readonly CausalTransformer _ref;
    private readonly RewardModel _rm;
    private readonly InferenceLanes? _lanes; // CPU: both models step at once, one per core
    private readonly int _vocab;
    private bool[] _used = [];
    private KvCache? _refCache, _rmCache;
    private Tensor? _refLogp;               // (rows, V): log π_ref of each row's next token
    private Tensor? _feedCpu, _rmFeedCpu;   // (rows) int64 host-side buffers for this step's tokens
    private float[] _stats = [];            // (3 × rows): log π_ref(token), entropy, RM value
    private bool[] _stepping = [];
    // Per pool row: why a forward over it failed partway (one model's caches written, the other's not), until a prefill
    // writes the row again; null for a row whose caches are whole.
    private string?[] _failed = [];

    /// <summary>Tests only: called between the reference LM's and the reward model's part of a prefill ("prefill") and
    /// before the reward model's decode step ("step"). An exception it throws is that forward failing halfway, as running
    /// out of memory would, with one model's caches written and the other's not.</summary>
    internal Action<string>? FaultForTests { get; set; }

    /// <param name="parallelModels">Step the two models at once, one per core (<see cref="InferenceLanes"/>); null: on a CPU
    /// with two or more threads unless RLHFGYM_INFERENCE_LANES=0.</param>
    public EnvDecoder(EnvBundle bundle, int capacity, Device device, bool? parallelModels = null)
    {
        Bundle = bundle;
        Device = device;
        Capacity = capacity;
        _vocab = bundle.VocabSize;
        _ref = bundle.LoadReference(device);
        _rm = bundle.LoadRewardModel(device);
        Scoring = new ScoringPipeline(_ref, _rm, bundle.PadId);
        _lanes = parallelModels ?? InferenceLanes.Pay(device) ? InferenceLanes.Shared : null;
    }

    /// <summary>The longest sequence (prompt + response) both models take in one forward (<see cref="EnvBundle.MaxSequenceLength"/>).</summary>
    public int MaxSequence => Bundle.MaxSequenceLength;

    /// <summary>Rows in the pool (taken or free).</summary>
    public int Rows => _used.Length;

    /// <summary>Rows taken by envs.</summary>
    public int RowsInUse => _used.Count(u => u);

    /// <summary>This step's token per pool row (what the reference LM reads); rows not stepping keep any valid id.</summary>
    public long[] Feed { get; private set; } = [];

    /// <summary>This step's token per pool row as the reward model reads it (the EOS overwrite may differ).</summary>
    public long[] RewardFeed { get; private set; } = [];

    /// <summary>After <see cref="Advance"/>: log π_ref of the token the row was fed.</summary>
    public float LogProb(int row) => _stats[row];

    /// <summary>After <see cref="Advance"/>: the reference's next-token entropy after the row's token.</summary>
    public float Entropy(int row) => _stats[Rows + row];

    /// <summary>After <see cref="Advance"/>: the reward model's value at the row's token.</summary>
    public float Value(int row) => _stats[2 * Rows + row];

    /// <summary>Why the last forward over this row failed partway, leaving its caches unusable until it is prefilled again
    /// (<see cref="Prefill"/>); null when its caches are whole.</summary>
    public string? FailedForward(int row) => _failed[row];

    // A forward over these rows threw: keep why, for the envs that own them to refuse to step them.
    private void MarkFailed(IEnumerable<int> rows, Exception error)
    {
        string why = $"{error.GetType().Name}: {error.Message}";
        foreach (int r in rows) _failed[r] = why;
    }

    /// <summary>Tokens held by the longest of the given rows.</summary>
    public long LongestOf(int[] rows)
    {
        long max = 0;
        foreach (int r in rows) max = Math.Max(max, _refCache!.Lengths[r]);
        return max;
    }

    /// <summary>Take <paramref name="count"/> rows (free rows first, then new ones at the end of the pool).</summary>
    public int[] Attach(int count)
    {
        var rows = new List<int>(count);
        for (int r = 0; r < Rows && rows.Count < count; r++)
            if (!_used[r]) rows.Add(r);
        int oldRows = Rows;
        if (rows.Count < count)
        {
            int newRows = oldRows + count - rows.Count;
            for (int r = oldRows; r < newRows; r++) rows.Add(r);
            Resize(newRows);
        }
        foreach (int r in rows) _used[r] = true;
        return rows.ToArray();
    }

    /// <summary>Give rows back; free rows at the end of the pool are dropped, so the pool's forward shrinks with it.</summary>
    public void Detach(int[] rows)
    {
        foreach (int r in rows) _used[r] = false;
        int keep = Array.LastIndexOf(_used, true) + 1;
        if (keep < Rows) Resize(keep);
    }

    // A pool of `rows` rows: rows below both sizes keep their state, new rows are empty.
    private void Resize(int rows)
    {
        int kept = Math.Min(rows, Rows);
        var source = new long[kept];
        for (int r = 0; r < kept; r++) source[r] = r;
        Array.Resize(ref _used, rows);
        Array.Resize(ref _failed, rows);
        Feed = Resized(Feed, rows);
        RewardFeed = Resized(RewardFeed, rows);
        _stats = new float[3 * rows];
        foreach (var span in _spans.Values) span.Dispose();
        _spans.Clear();
        _whole?.Dispose();
        _whole = null;
        var (refCache, rmCache, refLogp) = (_refCache, _rmCache, _refLogp);
        _refCache = _rmCache = null;
        _refLogp = null;
        _feedCpu?.Dispose();
        _rmFeedCpu?.Dispose();
        _feedCpu = _rmFeedCpu = null;
        if (rows > 0)
        {
            _refCache = refCache?.Regrouped(source, rows) ?? _ref.NewCache(rows, Capacity);
            _rmCache = rmCache?.Regrouped(source, rows) ?? _rm.Transformer.NewCache(rows, Capacity);
            _refLogp = zeros(rows, _vocab, ScalarType.Float32, Device).DetachFromDisposeScope();
            if (refLogp is not null && kept > 0) _refLogp.narrow(0, 0, kept).copy_(refLogp.narrow(0, 0, kept));
            _feedCpu = zeros(rows, ScalarType.Int64).DetachFromDisposeScope();
            _rmFeedCpu = zeros(rows, ScalarType.Int64).DetachFromDisposeScope();
        }
        refCache?.Dispose();
        rmCache?.Dispose();
        refLogp?.Dispose();
    }

    private long[] Resized(long[] feed, int rows)
    {
        var resized = feed;
        Array.Resize(ref resized, rows);
        for (int r = feed.Length; r < rows; r++) resized[r] = Bundle.EosIds[0]; // any valid id
        return resized;
    }

    /// <summary>
    /// One decode step of the rows of some envs (each env's rows, as <see cref="Attach"/> gave them). The step runs over
    /// the span of pool rows from the first to the last of them and computes the rows that take part
    /// (<see cref="CausalTransformer.DecodeStep"/> with a row mask); the other rows keep their caches and next-token
    /// distributions, and their readings after this call mean nothing.
    /// </summary>
    public void Advance(IReadOnlyList<int[]> rowSets)
    {
        if (_stepping.Length != Rows) _stepping = new bool[Rows];
        Array.Clear(_stepping);
        int stepping = 0, first = int.MaxValue, last = -1;
        foreach (var rows in rowSets)
            foreach (int r in rows)
                if (!_stepping[r])
                {
                    _stepping[r] = true;
                    stepping++;
                    first = Math.Min(first, r);
                    last = Math.Max(last, r);
                }
        if (stepping == 0) return;
        var span = first == 0 && last == Rows - 1 ? Whole : SpanOf(first, last - first + 1);
        if (stepping < span.Count) span.Only.Update(_stepping.AsSpan(first, span.Count));
        try { Step(span, stepping < span.Count); }
        catch (Exception e)
        {
            MarkFailed(Enumerable.Range(first, span.Count).Where(r => _stepping[r]), e);
            throw;
        }
    }

    // A span of pool rows with views of both caches over it (no copy) and its row mask; made once per span and kept
    // until the pool is resized.
    private sealed class RowSpan(int start, int count, KvCache reference, KvCache reward, RowMask only, bool views) : IDisposable
    {
        public int Start { get; } = start;
        public int Count { get; } = count;
        public KvCache Reference { get; } = reference;
        public KvCache Reward { get; } = reward;
        public RowMask Only { get; } = only;

        public void Dispose()
        {
            Only.Dispose();
            if (!views) return;
            Reference.Dispose();
            Reward.Dispose();
        }
    }

    private RowSpan? _whole;
    private readonly Dictionary<(int Start, int Count), RowSpan> _spans = new();
    private const int MaxSpans = 64;

    private RowSpan Whole => _whole ??= new RowSpan(0, Rows, _refCache!, _rmCache!, new RowMask(Rows, Device), views: false);

    private RowSpan SpanOf(int start, int count)
    {
        if (_spans.Count >= MaxSpans && !_spans.ContainsKey((start, count)))
        {
            // Sessions that step in ever new combinations would otherwise collect views without bound.
            foreach (var old in _spans.Values) old.Dispose();
            _spans.Clear();
        }
        if (!_spans.TryGetValue((start, count), out var span))
            _spans[(start, count)] = span = new RowSpan(start, count, _refCache!.RowRange(start, count), _rmCache!.RowRange(start, count),
                new RowMask(count, Device), views: true);
        return span;
    }

    // Both models' decode step over a span of rows, then its three readings per row to the host. Kept to the few tensor
    // ops the env needs beyond the bare forward: gather, and the one log-softmax + entropy routine.
    private void Step(RowSpan span, bool masked = false)
    {
        int rows = Rows, start = span.Start, count = span.Count;
        var only = masked ? span.Only : null;
        MemoryMarshal.AsBytes(Feed.AsSpan()).CopyTo(_feedCpu!.bytes);
        MemoryMarshal.AsBytes(RewardFeed.AsSpan()).CopyTo(_rmFeedCpu!.bytes);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        bool onCpu = Device.type == TorchSharp.DeviceType.CPU;
        bool whole = count == rows;
        var feed = whole ? _feedCpu : _feedCpu.narrow(0, start, count);
        var rmFeed = whole ? _rmFeedCpu! : _rmFeedCpu!.narrow(0, start, count);
        var tokens = onCpu ? feed : feed.to(Device);
        var rmTokens = onCpu ? rmFeed : rmFeed.to(Device);
        var nextLogp = whole ? _refLogp! : _refLogp!.narrow(0, start, count);
        var logProb = nextLogp.gather(1, tokens.unsqueeze(1)); // (count, 1), contiguous: read as count floats
        if (only is not null) logProb = logProb.index_select(0, only.Index); // the stepping rows', as the models return them
        Tensor logp, entropy, value;
        if (_lanes is not null)
        {
            // On a CPU, the reference LM and the reward model step at once, one per core (InferenceLanes). What the lanes
            // make belongs to no scope of this thread: detached there, disposed here.
            Tensor? lp = null, ent = null, val = null;
            try
            {
                _lanes.Run(
                    () => (lp, ent) = Detached(ReferenceStep(tokens, span.Reference, only)),
                    () => val = RewardModelStep(rmTokens, span.Reward, only).DetachFromDisposeScope());
            }
            catch
            {
                // One lane's outputs are detached from every scope: a failed step must not leak them.
                lp?.Dispose();
                ent?.Dispose();
                val?.Dispose();
                throw;
            }
            (logp, entropy, value) = (lp!, ent!, val!);
        }
        else
        {
            (logp, entropy) = ReferenceStep(tokens, span.Reference, only);
            logp = logp.DetachFromDisposeScope();
            value = RewardModelStep(rmTokens, span.Reward, only);
        }
        KeepNextTokenLogProbs(logp, span, only);
        try { ReadBack(logProb, entropy, value, start, count, onCpu, only); }
        finally
        {
            if (_lanes is not null)
            {
                entropy.Dispose();
                value.Dispose();
            }
        }
    }

    // The three readings of a span of rows (or of its stepping rows, in the mask's order) into the host's per-row arrays.
    private void ReadBack(Tensor logProb, Tensor entropy, Tensor value, int start, int count, bool onCpu, RowMask? only)
    {
        if (onCpu)
        {
            Store(0, MemoryMarshal.Cast<byte, float>(logProb.bytes), start, count, only);
            Store(1, MemoryMarshal.Cast<byte, float>(entropy.bytes), start, count, only);
            Store(2, MemoryMarshal.Cast<byte, float>(value.bytes), start, count, only);
            return;
        }
        int n = only?.HostIndex.Length ?? count;
        var host = MemoryMarshal.Cast<byte, float>(stack([logProb.view(-1), entropy, value]).cpu().bytes);
        for (int k = 0; k < 3; k++) Store(k, host.Slice(k * n, n), start, count, only);
    }

    // Reading k (0: log-prob, 1: entropy, 2: value) of the span's rows, or of the mask's rows in its order.
    private void Store(int k, ReadOnlySpan<float> readings, int start, int count, RowMask? only)
    {
        var into = _stats.AsSpan(k * Rows + start, count);
        if (only is null)
        {
            readings.CopyTo(into);
            return;
        }
        var index = only.HostIndex;
        for (int i = 0; i < index.Length; i++) into[(int)index[i]] = readings[i];
    }

    private static (Tensor, Tensor) Detached((Tensor A, Tensor B) pair) => (pair.A.DetachFromDisposeScope(), pair.B.DetachFromDisposeScope());

    // The next step reads log π_ref of its tokens from this distribution: keep it for the rows that stepped. Takes
    // ownership of logp (detached from any dispose scope).
    private void KeepNextTokenLogProbs(Tensor logp, RowSpan span, RowMask? only)
    {
        if (only is null && span.Count == Rows)
        {
            _refLogp!.Dispose();
            _refLogp = logp;
            return;
        }
        using (logp)
        {
            using var rows = _refLogp!.narrow(0, span.Start, span.Count);
            if (only is null) rows.copy_(logp);
            else rows.index_copy_(0, only.Index, logp); // the models computed the stepping rows only
        }
    }

    // The reference's decode step: its next-token log-probs and entropy.
    private (Tensor LogProbs, Tensor Entropy) ReferenceStep(Tensor tokens, KvCache cache, RowMask? only) =>
        TokenStatistics.LogSoftmaxAndEntropy(_ref.Logits(_ref.DecodeStep(tokens, cache, only)));

    // The reward model's decode step: its value at each row's token, as fp32.
    private Tensor RewardModelStep(Tensor rmTokens, KvCache cache, RowMask? only)
    {
        FaultForTests?.Invoke("step");
        var value = _rm.Head.forward(_rm.Transformer.DecodeStep(rmTokens, cache, only));
        return value.dtype == ScalarType.Float32 ? value : value.to_type(ScalarType.Float32);
    }

    /// <summary>
    /// Prefill both caches of the given rows with prompts and set their first-token log-probs. <paramref name="whole"/>
    /// with every pool row in order fills the caches in one go (a lone env's full reset).
    /// </summary>
    public void Prefill(int[] rows, IReadOnlyList<int[]> prompts, bool whole)
    {
        if (rows.Length == 0) return;
        try { PrefillBoth(rows, prompts, whole); }
        catch (Exception e)
        {
            MarkFailed(rows, e);
            throw;
        }
        foreach (int r in rows) _failed[r] = null;
    }

    private void PrefillBoth(int[] rows, IReadOnlyList<int[]> prompts, bool whole)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var batch = new SequenceBatch(prompts.Select(p => (p, Array.Empty<int>())).ToList(), Bundle.PadId, Device);
        whole &= rows.Length == Rows && rows.AsSpan().SequenceEqual(Enumerable.Range(0, Rows).ToArray());
        var longRows = rows.Select(r => (long)r).ToArray();
        Tensor refHidden;
        if (whole)
        {
            refHidden = _ref.Prefill(batch.Tokens, batch.Lengths, _refCache!);
            FaultForTests?.Invoke("prefill");
            _rm.Transformer.Prefill(batch.Tokens, batch.Lengths, _rmCache!);
        }
        else
        {
            refHidden = _ref.PrefillRows(batch.Tokens, batch.Lengths, _refCache!, longRows);
            FaultForTests?.Invoke("prefill");
            _rm.Transformer.PrefillRows(batch.Tokens, batch.Lengths, _rmCache!, longRows);
        }
        var logits = _ref.Logits(CausalTransformer.LastPositions(refHidden, batch.Lengths));
        var logp = nn.functional.log_softmax(logits.to_type(ScalarType.Float32), -1);
        if (whole) _refLogp!.copy_(logp);
        else _refLogp!.index_copy_(0, tensor(longRows, ScalarType.Int64, Device), logp);
    }

    public void Dispose()
    {
        Resize(0);
        _ref.Dispose();
        _rm.Dispose();
    }
}
