using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Env.Segmentation;

/// <summary>
/// The frozen reference LM's next-token entropy at every response position, in fp32, from one batched full forward:
/// result[i][j] is the entropy of π_ref(· | x, y_≤j), the distribution that predicts y_{j+1}.
/// </summary>
public static class ReferenceEntropies
{
    public static float[][] Compute(CausalTransformer reference, IReadOnlyList<(int[] Prompt, int[] Response)> rows, int padId, int batchSize = 128)
    {
        var result = new float[rows.Count][];
        using var _ = no_grad();
        for (int start = 0; start < rows.Count; start += batchSize)
        {
            var chunk = rows.Skip(start).Take(batchSize).ToList();
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(chunk, padId, reference.Device);
            var entropy = TokenStatistics.Entropy(reference.Logits(reference.Forward(batch.Tokens, batch.Lengths))).cpu();
            var host = entropy.data<float>().ToArray();
            for (int b = 0; b < chunk.Count; b++)
            {
                int p = batch.PromptLengths[b], t = chunk[b].Response.Length;
                result[start + b] = host.AsSpan(b * batch.Width + p, t).ToArray();
            }
        }
        return result;
    }
}
