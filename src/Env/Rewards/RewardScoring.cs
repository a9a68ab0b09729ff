using RlhfGym.Env.Training;
using static TorchSharp.torch;

namespace RlhfGym.Env.Rewards;

/// <summary>One prompt + response with its segment plan.</summary>
public sealed record PlannedResponse(int[] Prompt, int[] Response, ResponseSegments Plan);

/// <summary>
/// Reads a reward model at each segment's read position. Training uses <see cref="SequenceScores"/> inside autograd;
/// everything else uses <see cref="SegmentRewards"/>. The sequence score is the mean of the segment rewards
/// (method.md §2: a sum would change scale and favour length).
/// </summary>
public static class RewardScoring
{
    /// <summary>Mean of the segment rewards of each row: values (B, T) → (B). A row with no segments scores 0.</summary>
    public static Tensor SequenceScores(Tensor values, SequenceBatch batch, IReadOnlyList<ResponseSegments> plans)
    {
        var (rows, cols, counts) = ReadIndex(batch, plans);
        using var rowT = tensor(rows, ScalarType.Int64, values.device);
        using var colT = tensor(cols, ScalarType.Int64, values.device);
        using var countT = tensor(counts, ScalarType.Float32, values.device);
        var picked = values.index([rowT, colT]);
        var sums = zeros(plans.Count, values.dtype, values.device).index_add(0, rowT, picked, 1);
        return sums / countT.clamp_min(1);
    }

    /// <summary>Raw segment rewards r_k of every response (no gradient), in batches.</summary>
    public static double[][] SegmentRewards(RewardModel rm, IReadOnlyList<PlannedResponse> data, int padId, int batchSize = 128)
    {
        var result = new double[data.Count][];
        using var _ = no_grad();
        for (int start = 0; start < data.Count; start += batchSize)
        {
            var chunk = data.Skip(start).Take(batchSize).ToList();
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(chunk.Select(d => (d.Prompt, d.Response)).ToList(), padId, rm.Transformer.Device);
            var values = rm.Values(batch).cpu().data<float>().ToArray();
            for (int b = 0; b < chunk.Count; b++)
            {
                var plan = chunk[b].Plan;
                var rewards = new double[plan.Count];
                for (int k = 0; k < plan.Count; k++) rewards[k] = values[b * batch.Width + batch.PromptLengths[b] + plan.ReadPosition(k)];
                result[start + b] = rewards;
            }
        }
        return result;
    }

    public static double SequenceScore(IReadOnlyList<double> segmentRewards) => segmentRewards.Count == 0 ? 0 : segmentRewards.Average();

    private static (long[] Rows, long[] Cols, float[] Counts) ReadIndex(SequenceBatch batch, IReadOnlyList<ResponseSegments> plans)
    {
        int total = plans.Sum(p => p.Count);
        var rows = new long[total];
        var cols = new long[total];
        var counts = new float[plans.Count];
        int i = 0;
        for (int b = 0; b < plans.Count; b++)
        {
            counts[b] = plans[b].Count;
            for (int k = 0; k < plans[b].Count; k++, i++)
            {
                rows[i] = b;
                cols[i] = batch.PromptLengths[b] + plans[b].ReadPosition(k);
            }
        }
        return (rows, cols, counts);
    }
}
