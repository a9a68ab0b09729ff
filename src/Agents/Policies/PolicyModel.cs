using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Policies;

/// <summary>
/// The policy: a causal transformer (initialised from the SFT model) that samples through its own KV cache while a
/// rollout runs, and scores whole sequences for updates. Sampling and scoring use the same temperature, so the
/// log-probs PPO ratios compare are of the distribution that was actually sampled.
/// </summary>
public sealed class PolicyModel : IDisposable
{
    public CausalTransformer Model { get; }
    public double Temperature { get; }
    private KvCache? _cache;
    private Tensor? _nextLogits; // (B, V)
    private readonly long[] _host;

    public PolicyModel(CausalTransformer model, double temperature, int maxBatch)
    {
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "policy temperature must be > 0");
        Model = model;
        Temperature = temperature;
        _host = new long[maxBatch];
    }

    /// <summary>Prefill every row's prompt; capacity covers the prompt plus the response budget.</summary>
    public void Begin(IReadOnlyList<int[]> prompts, int maxNewTokens, int padId)
    {
        _cache?.Dispose();
        _nextLogits?.Dispose();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var batch = new SequenceBatch(prompts.Select(p => (p, Array.Empty<int>())).ToList(), padId, Model.Device);
        _cache = Model.NewCache(prompts.Count, Math.Min(Model.Config.MaxSeqLen, batch.Width + maxNewTokens + 1));
        var hidden = Model.Prefill(batch.Tokens, batch.Lengths, _cache);
        _nextLogits = Model.Logits(CausalTransformer.LastPositions(hidden, batch.Lengths)).MoveToOuterDisposeScope();
    }

    /// <summary>Sample one token per row from the current next-token distribution.</summary>
    public int[] Sample(Sampler sampler)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var tokens = sampler.Sample(_nextLogits!).cpu();
        var result = new int[tokens.shape[0]];
        var data = tokens.data<long>();
        for (int i = 0; i < result.Length; i++) result[i] = (int)data[i];
        return result;
    }

    /// <summary>Feed one token per row (the actions the env was given, or fillers for rows whose episode is over).</summary>
    public void Advance(ReadOnlySpan<int> tokens)
    {
        for (int i = 0; i < tokens.Length; i++) _host[i] = tokens[i];
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var t = tensor(_host.AsSpan(0, tokens.Length).ToArray(), ScalarType.Int64, Model.Device);
        var logits = Model.Logits(Model.DecodeStep(t, _cache!));
        _nextLogits!.Dispose();
        _nextLogits = logits.MoveToOuterDisposeScope();
    }

    /// <summary>log π(y_t | x, y_&lt;t) at every position of a batch: (B, T−1), position t scoring token t+1.</summary>
    public Tensor NextTokenLogProbs(SequenceBatch batch)
    {
        var input = batch.Tokens.narrow(1, 0, batch.Width - 1);
        var lengths = batch.Lengths.Select(l => Math.Min(l, batch.Width - 1)).ToArray();
        var logits = Model.Logits(Model.Forward(input, lengths)) / Temperature;
        return TokenStatistics.LogProbOf(logits, batch.Tokens.narrow(1, 1, batch.Width - 1));
    }

    /// <summary>Policy entropy at every position (for metrics).</summary>
    public Tensor NextTokenEntropy(SequenceBatch batch)
    {
        var input = batch.Tokens.narrow(1, 0, batch.Width - 1);
        var lengths = batch.Lengths.Select(l => Math.Min(l, batch.Width - 1)).ToArray();
        return TokenStatistics.Entropy(Model.Logits(Model.Forward(input, lengths)) / Temperature);
    }

    public void Dispose()
    {
        _cache?.Dispose();
        _nextLogits?.Dispose();
        Model.Dispose();
    }
}
