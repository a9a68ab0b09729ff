using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Decoder-only, pre-norm transformer with rotary (or, for GPT-2, learned) positions. Three ways in:
/// <list type="bullet">
/// <item><see cref="Forward"/>: a whole right-padded batch (training, scoring);</item>
/// <item><see cref="Prefill"/>: the same, also filling a <see cref="KvCache"/>;</item>
/// <item><see cref="DecodeStep"/>: one new token per row through the cache (generation, env steps).</item>
/// </list>
/// All three return final-norm hidden states; <see cref="Logits"/> applies the LM head.
/// </summary>
public sealed class CausalTransformer : nn.Module
{
    public TransformerConfig Config { get; }
    public Device Device { get; }
    private readonly RotaryEmbedding? _rope; // null with learned positions

    public Embedding embed;
    public Embedding? pos_embed; // learned positions (GPT-2's wpe)
    public ModuleList<TransformerBlock> blocks;
    public nn.Module<Tensor, Tensor> norm;
    public Linear? lm_head; // null when tied to the embedding

    public CausalTransformer(TransformerConfig config, Device? device = null) : base(nameof(CausalTransformer))
    {
        config.Validate();
        Config = config;
        Device = device ?? CPU;
        embed = nn.Embedding(config.VocabSize, config.DModel);
        if (config.Positions == PositionKind.Learned) pos_embed = nn.Embedding(config.MaxSeqLen, config.DModel);
        blocks = new ModuleList<TransformerBlock>();
        for (int i = 0; i < config.NLayers; i++) blocks.Add(new TransformerBlock(config));
        norm = Norms.Create(config);
        if (!config.TiedEmbeddings) lm_head = nn.Linear(config.DModel, config.VocabSize, hasBias: false);
        RegisterComponents();
        InitWeights();
        if (config.Positions == PositionKind.Rotary)
            _rope = new RotaryEmbedding(config.HeadDim, config.MaxSeqLen, config.RopeTheta, Device, config.RopeScaling);
        this.to(Device);
    }

    // GPT-2 style: N(0, 0.02) everywhere, residual output projections scaled by 1/sqrt(2·layers), zero biases.
    private void InitWeights()
    {
        using var _ = no_grad();
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.NLayers);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith(".bias")) nn.init.zeros_(p);
            else if (name.Contains("norm")) continue;
            else if (name.EndsWith("o_proj.weight") || name.EndsWith("down_proj.weight")) nn.init.normal_(p, 0, residualStd);
            else nn.init.normal_(p, 0, 0.02);
        }
    }

    /// <summary>Single-query attention kernel for <see cref="DecodeStep"/>; Auto picks the measured fastest.</summary>
    public DecodeAttention DecodeAttention { get; set; } = DecodeAttention.Auto;

    public KvCache NewCache(int batchSize, int capacity) =>
        new(Config, batchSize, capacity, Device, embed.weight!.dtype);

    /// <summary>Hidden states (B, T, D) for right-padded tokens (B, T); lengths null means every row is full.</summary>
    public Tensor Forward(Tensor tokens, ReadOnlySpan<long> lengths = default) => Sequence(tokens, lengths, null);

    /// <summary>Like <see cref="Forward"/>, and stores every position's keys and values in the cache.</summary>
    public Tensor Prefill(Tensor tokens, ReadOnlySpan<long> lengths, KvCache cache)
    {
        if (cache.BatchSize != tokens.shape[0])
            throw new ArgumentException($"cache holds {cache.BatchSize} rows but the batch has {tokens.shape[0]}");
        if (tokens.shape[1] > cache.Capacity)
            throw new ArgumentException($"prompt of {tokens.shape[1]} tokens does not fit a cache of {cache.Capacity}");
        var hidden = Sequence(tokens, lengths, cache);
        if (lengths.IsEmpty)
        {
            Span<long> full = stackalloc long[(int)tokens.shape[0]];
            full.Fill(tokens.shape[1]);
            cache.SetLengths(full);
        }
        else cache.SetLengths(lengths);
        return hidden;
    }

    /// <summary>
    /// Prefill only some rows of a cache (new prompts for rows whose episodes ended); the other rows keep their state.
    /// tokens (k, T) right-padded with lengths for the k rows; returns their hidden states (k, T, D).
    /// </summary>
    public Tensor PrefillRows(Tensor tokens, ReadOnlySpan<long> lengths, KvCache cache, ReadOnlySpan<long> rows)
    {
        using var fresh = NewCache((int)tokens.shape[0], cache.Capacity);
        var hidden = Prefill(tokens, lengths, fresh);
        cache.CopyRowsFrom(fresh, rows);
        return hidden;
    }

    /// <summary>
    /// Feed one token per row (tokens: (B) int64) at each row's next position; returns hidden (B, D). With
    /// <paramref name="only"/>, only its rows are computed and advanced (the tokens of the others are not read), and the
    /// result is (n, D) for its rows in <see cref="RowMask.Index"/> order: a pool of rows shared by several envs steps
    /// the rows of those that sent a step, at the cost of those rows (<see cref="DecodeRows"/>).
    /// </summary>
    public Tensor DecodeStep(Tensor tokens, KvCache cache, RowMask? only = null)
    {
        if (only is not null && only.Size != cache.BatchSize)
            throw new ArgumentException($"row mask has {only.Size} rows, the cache {cache.BatchSize}");
        if (tokens.shape.Length != 1 || tokens.shape[0] != cache.BatchSize)
            throw new ArgumentException($"expected tokens of shape ({cache.BatchSize}), got ({string.Join(", ", tokens.shape)})");
        cache.EnsureRoomForOneMore();
        using var scope = NewDisposeScope();
        long span = cache.MaxLength + 1;
        var kernel = DecodeAttentionKernels.Resolve(DecodeAttention);
        var keyBias = cache.StepKeyBias();
        var (rowTokens, positions) = only is null
            ? (tokens, cache.Positions)
            : (tokens.index_select(0, only.Index), cache.Positions.index_select(0, only.Index));
        var rows = only is null ? cache.EveryRow() : cache.SomeRows(only.Index, positions);
        var angles = _rope?.At(positions) ?? RotaryAngles.None;
        var x = embed.forward(rowTokens.view(-1, 1));
        if (pos_embed is not null) x = x + pos_embed.forward(positions).unsqueeze(1);
        for (int i = 0; i < blocks.Count; i++)
            x = blocks[i].Step(x, angles, rows, cache.Keys[i], cache.Values[i], keyBias, span, kernel);
        var hidden = norm.forward(x).squeeze(1);
        if (only is null) cache.Advance();
        else cache.Advance(only);
        return hidden.MoveToOuterDisposeScope();
    }

    /// <summary>Next-token logits from hidden states (..., D) → (..., V).</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is null ? nn.functional.linear(hidden, embed.weight!) : lm_head.forward(hidden);

    /// <summary>Hidden state at each row's last real token: hidden (B, T, D), lengths → (B, D).</summary>
    public static Tensor LastPositions(Tensor hidden, ReadOnlySpan<long> lengths)
    {
        var index = new long[lengths.Length];
        for (int b = 0; b < index.Length; b++) index[b] = lengths[b] - 1;
        using var idx = tensor(index, ScalarType.Int64, hidden.device);
        using var rows = arange(index.Length, ScalarType.Int64, hidden.device);
        return hidden.index([rows, idx]);
    }

    private Tensor Sequence(Tensor tokens, ReadOnlySpan<long> lengths, KvCache? cache)
    {
        if (tokens.shape.Length != 2) throw new ArgumentException($"tokens must be (B, T), got rank {tokens.shape.Length}");
        long b = tokens.shape[0], t = tokens.shape[1];
        if (t > Config.MaxSeqLen) throw new ArgumentException($"sequence of {t} tokens exceeds max_seq_len {Config.MaxSeqLen}");
        if (!lengths.IsEmpty && lengths.Length != b) throw new ArgumentException($"expected {b} lengths, got {lengths.Length}");
        using var scope = NewDisposeScope();
        var mask = PaddingMask(lengths, t);
        var angles = _rope?.FromStart(t) ?? RotaryAngles.None;
        var x = embed.forward(tokens);
        if (pos_embed is not null) x = x + pos_embed.forward(arange(t, ScalarType.Int64, Device)).unsqueeze(0);
        for (int i = 0; i < blocks.Count; i++)
        {
            // Each block's temporaries go when the block is done, not at the end of the forward: a whole batch's
            // activations of every layer at once ran a d1024 L12 forward of 256×512 tokens out of 140 GB on a GPU.
            using var blockScope = NewDisposeScope();
            var next = blocks[i].Sequence(x, angles, mask, cache?.Keys[i], cache?.Values[i]).MoveToOuterDisposeScope();
            if (i > 0) x.Dispose(); // the previous block's output (autograd keeps what backward needs on its own)
            x = next;
        }
        return norm.forward(x).MoveToOuterDisposeScope();
    }

    // Causal mask that also hides each row's right padding from every query; null when no row is padded.
    private Tensor? PaddingMask(ReadOnlySpan<long> lengths, long t)
    {
        if (lengths.IsEmpty) return null;
        bool padded = false;
        foreach (var len in lengths)
        {
            if (len < 1 || len > t) throw new ArgumentOutOfRangeException(nameof(lengths), len, $"each length must be in 1..{t}");
            padded |= len < t;
        }
        if (!padded) return null;
        var causal = ones(t, t, ScalarType.Bool, Device).tril();                        // (T, T)
        var valid = arange(t, ScalarType.Int64, Device).unsqueeze(0)
            .lt(tensor(lengths.ToArray(), ScalarType.Int64, Device).unsqueeze(1));      // (B, T)
        return causal.unsqueeze(0).logical_and(valid.unsqueeze(1)).unsqueeze(1);       // (B, 1, T, T)
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _rope?.Dispose();
        base.Dispose(disposing);
    }
}
