using System.Runtime.InteropServices;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>What the two frozen models read at every position of one finished response.</summary>
/// <param name="Entropies">Reference next-token entropy after each response token (what the cut rule reads).</param>
/// <param name="RefLogProbs">log π_ref of each response token given everything before it.</param>
/// <param name="Values">The reward model's value at each response position.</param>
public sealed record ResponseReadings(float[] Entropies, float[] RefLogProbs, float[] Values);

/// <summary>Finished (prompt, response) pairs to score, and the options and normalizer their rewards are assembled under.</summary>
public sealed record ScoreJob(IReadOnlyList<(int[] Prompt, int[] Response)> Rows, EnvOptions Options, RewardNormalizer Normalizer);

/// <summary>
/// The one segment-and-score pipeline (method.md §1–4), for finished responses: (1) the reference LM's next-token
/// entropies and log-probs from one full forward, (2) cuts where entropy exceeds c_ent, (3) the reward model read at
/// each segment end, (4) the normalizer and (5) the interpolation over tokens (<see cref="RewardAssembler"/>).
/// The env's score endpoint, normalizer fitting, reward-model evaluation and reports all call it, so the normalizer is
/// fitted on exactly the rewards the env pays; the env's steps read the same numbers incrementally through KV caches
/// and assemble them with the same <see cref="RewardAssembler"/>.
/// </summary>
public sealed class ScoringPipeline
{
    /// <summary>Rows per full forward: bounds the (rows × width × vocabulary) log-prob activation.</summary>
    public const int DefaultBatch = 128;

    private readonly CausalTransformer _reference;
    private readonly RewardModel? _rewardModel;
    private readonly int _padId;

    /// <param name="rewardModel">Null for a pipeline that only plans (steps 1–2), e.g. before a reward model exists.</param>
    public ScoringPipeline(CausalTransformer reference, RewardModel? rewardModel, int padId)
    {
        _reference = reference;
        _rewardModel = rewardModel;
        _padId = padId;
    }

    /// <summary>Step 1: the reference's next-token entropy at every response position of every row.</summary>
    public float[][] Entropies(IReadOnlyList<(int[] Prompt, int[] Response)> rows, int batchSize = DefaultBatch) =>
        Read(rows, rows, batchSize, rewardModel: false).Select(r => r.Entropies).ToArray();

    /// <summary>Steps 1–2: cut every response under a reading (entropies are computed only when it needs them).</summary>
    /// <param name="eosOf">The EOS id a response is planned with (its own last token when it ended with one).</param>
    public List<PlannedResponse> Plan(IReadOnlyList<(int[] Prompt, int[] Response)> rows, RewardReading reading, Func<int[], int> eosOf,
        int batchSize = DefaultBatch)
    {
        var entropies = reading.NeedsEntropy ? Entropies(rows, batchSize) : null;
        return rows.Select((r, i) => new PlannedResponse(r.Prompt, r.Response,
            ResponseSegments.Plan(reading, r.Response, eosOf(r.Response), entropies is null ? default : entropies[i]))).ToList();
    }

    /// <summary>Step 3 on planned responses: the raw segment rewards r_k (no gradient).</summary>
    public double[][] SegmentRewards(IReadOnlyList<PlannedResponse> planned, int batchSize = DefaultBatch) =>
        RewardScoring.SegmentRewards(RewardModel, planned, _padId, batchSize);

    /// <summary>
    /// Steps 1–5: per-token rewards of finished (prompt, response) pairs under the env's options, as its steps would
    /// have paid them. A response that does not end with an EOS counts as cut by the budget; under the overwrite rule
    /// the reward model sees the primary EOS in place of its last token.
    /// </summary>
    public List<EpisodeRewards> Score(IReadOnlyList<(int[] Prompt, int[] Response)> rows, EnvOptions options, RewardNormalizer normalizer,
        IReadOnlyList<int> eosIds, int batchSize = DefaultBatch) =>
        ScoreTogether([new ScoreJob(rows, options, normalizer)], eosIds, batchSize)[0];

    /// <summary>
    /// <see cref="Score"/> for several jobs at once (a server's sessions on one bundle): their rows go through the two
    /// models together, in batches of <paramref name="batchSize"/>, and each job's rewards are assembled under its own
    /// options and normalizer. Each job gets what it would alone, to fp32 rounding (a row may share a batch, and so a
    /// padded width, with other jobs' rows).
    /// </summary>
    public List<List<EpisodeRewards>> ScoreTogether(IReadOnlyList<ScoreJob> jobs, IReadOnlyList<int> eosIds, int batchSize = DefaultBatch)
    {
        int primaryEos = eosIds[0];
        bool IsEos(int token) => eosIds.Contains(token);
        var rows = new List<(int[] Prompt, int[] Response)>();
        var rmRows = new List<(int[] Prompt, int[] Response)>();
        foreach (var job in jobs)
            foreach (var r in job.Rows)
            {
                rows.Add(r);
                rmRows.Add(RewardAssembler.OverwritesLastToken(job.Options, IsEos(r.Response[^1])) ? (r.Prompt, WithLast(r.Response, primaryEos)) : r);
            }
        var readings = Read(rows, rmRows, batchSize, rewardModel: true);
        var results = new List<List<EpisodeRewards>>(jobs.Count);
        int next = 0;
        foreach (var job in jobs)
        {
            var result = new List<EpisodeRewards>(job.Rows.Count);
            foreach (var (_, response) in job.Rows)
            {
                bool ended = IsEos(response[^1]);
                var r = readings[next++];
                result.Add(RewardAssembler.Assemble(job.Options, job.Normalizer, response, r.Entropies, r.RefLogProbs, r.Values,
                    ended ? response[^1] : primaryEos, truncated: !ended));
            }
            results.Add(result);
        }
        return results;
    }

    /// <summary>
    /// The raw segment rewards the env would read for each response under a reading (steps 1–3 through
    /// <see cref="Score"/>, so a normalizer fitted on them is fitted on exactly what the env pays). Responses with no
    /// segment (only an EOS) are left out.
    /// </summary>
    public List<IReadOnlyList<double>> RawSegmentRewards(IReadOnlyList<(int[] Prompt, int[] Response)> rows, RewardReading reading,
        IReadOnlyList<int> eosIds, int maxNewTokens, int batchSize = DefaultBatch)
    {
        var options = new EnvOptions { Reading = reading, Normalizer = NormalizerKind.None, MaxNewTokens = maxNewTokens };
        return Score(rows, options, RewardNormalizer.Identity, eosIds, batchSize)
            .Where(e => e.RawSegmentRewards.Length > 0).Select(e => (IReadOnlyList<double>)e.RawSegmentRewards).ToList();
    }

    private RewardModel RewardModel => _rewardModel ?? throw new InvalidOperationException("this scoring pipeline has no reward model (it only plans)");

    // One full forward of the reference over each batch of rows (and of the reward model over the same rows as it
    // sees them), read back per response position.
    private List<ResponseReadings> Read(IReadOnlyList<(int[] Prompt, int[] Response)> rows, IReadOnlyList<(int[] Prompt, int[] Response)> rmRows,
        int batchSize, bool rewardModel)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be > 0");
        var result = new List<ResponseReadings>(rows.Count);
        using var _ = no_grad();
        for (int start = 0; start < rows.Count; start += batchSize)
        {
            int n = Math.Min(batchSize, rows.Count - start);
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(Slice(rows, start, n), _padId, _reference.Device);
            var (logp, entropyT) = TokenStatistics.LogSoftmaxAndEntropy(_reference.Logits(_reference.Forward(batch.Tokens, batch.Lengths)));
            int w = batch.Width;
            // log π_ref(y_j) is read at the position before y_j.
            var chosenT = TokenStatistics.Select(logp.narrow(1, 0, w - 1), batch.Tokens.narrow(1, 1, w - 1));
            var entropy = HostFloats(entropyT);
            var chosen = HostFloats(chosenT);
            float[]? values = null;
            if (rewardModel)
            {
                using var rmBatch = new SequenceBatch(Slice(rmRows, start, n), _padId, _reference.Device);
                values = HostFloats(RewardModel.Values(rmBatch));
            }
            for (int r = 0; r < n; r++)
            {
                int p = batch.PromptLengths[r], t = rows[start + r].Response.Length;
                var ent = entropy.AsSpan(r * w + p, t).ToArray();
                var lp = chosen.AsSpan(r * (w - 1) + p - 1, t).ToArray();
                var val = values is null ? [] : values.AsSpan(r * w + p, t).ToArray();
                result.Add(new ResponseReadings(ent, lp, val));
            }
        }
        return result;
    }

    private static List<(int[] Prompt, int[] Response)> Slice(IReadOnlyList<(int[] Prompt, int[] Response)> rows, int start, int count)
    {
        var slice = new List<(int[] Prompt, int[] Response)>(count);
        for (int i = start; i < start + count; i++) slice.Add(rows[i]);
        return slice;
    }

    private static float[] HostFloats(Tensor t) =>
        MemoryMarshal.Cast<byte, float>(t.to_type(ScalarType.Float32).cpu().contiguous().bytes).ToArray();

    private static int[] WithLast(int[] response, int token)
    {
        var copy = (int[])response.Clone();
        copy[^1] = token;
        return copy;
    }
}
