using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Generation;

/// <summary>
/// Batched sampling through the KV cache: one prefill of the right-padded prompts, then one decode step per new token
/// for every row. A row stops at its first EOS (its later tokens are ignored) or at the token budget.
/// </summary>
public static class TextGenerator
{
    /// <summary>Responses (token ids, including the EOS when one was emitted) for each prompt.</summary>
    public static int[][] Generate(CausalTransformer model, IReadOnlyList<int[]> prompts, int maxNewTokens, Sampler sampler, int eosId)
    {
        if (prompts.Count == 0) return [];
        if (maxNewTokens <= 0) throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens, "must be > 0");
        using var _ = no_grad();
        int b = prompts.Count, width = prompts.Max(p => p.Length);
        var lengths = new long[b];
        var padded = new long[b * width];
        for (int r = 0; r < b; r++)
        {
            if (prompts[r].Length == 0) throw new ArgumentException($"prompt {r} is empty");
            lengths[r] = prompts[r].Length;
            for (int t = 0; t < prompts[r].Length; t++) padded[r * width + t] = prompts[r][t];
        }
        using var cache = model.NewCache(b, Math.Min(model.Config.MaxSeqLen, width + maxNewTokens));
        using var scope = NewDisposeScope();
        var tokens = tensor(padded, [b, width], ScalarType.Int64, model.Device);
        var hidden = CausalTransformer.LastPositions(model.Prefill(tokens, lengths, cache), lengths);
        var output = new List<int>[b];
        for (int r = 0; r < b; r++) output[r] = new List<int>(maxNewTokens);
        var done = new bool[b];
        int remaining = b;
        for (int step = 0; step < maxNewTokens && remaining > 0; step++)
        {
            using var stepScope = NewDisposeScope();
            var next = sampler.Sample(model.Logits(hidden));
            var host = next.cpu().data<long>().ToArray();
            for (int r = 0; r < b; r++)
            {
                if (done[r]) continue;
                output[r].Add((int)host[r]);
                if (host[r] == eosId) { done[r] = true; remaining--; }
            }
            if (remaining == 0 || step + 1 == maxNewTokens || cache.MaxLength >= cache.Capacity) break;
            hidden.Dispose();
            hidden = model.DecodeStep(next, cache).MoveToOuterDisposeScope();
        }
        return output.Select(o => o.ToArray()).ToArray();
    }

    /// <summary>One response per prompt (prompts may repeat), in batches of <paramref name="batchSize"/> rows, all drawn
    /// from one sampler seeded with <paramref name="seed"/>: the same seed gives the same responses.</summary>
    public static int[][] SampleInBatches(CausalTransformer model, IReadOnlyList<int[]> prompts, int maxNewTokens, long seed, int eosId,
        double temperature = 1.0, int batchSize = 256)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be > 0");
        using var sampler = new Sampler(seed, temperature, device: model.Device);
        var result = new List<int[]>(prompts.Count);
        for (int start = 0; start < prompts.Count; start += batchSize)
            result.AddRange(Generate(model, prompts.Skip(start).Take(batchSize).ToList(), maxNewTokens, sampler, eosId));
        return result.ToArray();
    }
}
