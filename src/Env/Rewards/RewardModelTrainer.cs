using System.Diagnostics;
using RlhfGym.Env.Common;
using RlhfGym.Env.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfGym.Env.Rewards;

/// <summary>A preference pair with both responses planned for the reward mode being trained.</summary>
public sealed record PlannedPair(PlannedResponse Chosen, PlannedResponse Rejected);

/// <summary>
/// The paper's RM recipe (AdamW β (0.9, 0.95), weight decay 0, 3 % warm-up, cosine to 0.1×, clip 1.0) with a learning
/// rate and epoch count measured for PhraseWorld's small model (docs/rewards.md): 1e-3 for 4 epochs of 32 pairs.
/// </summary>
public sealed record RewardTrainingOptions : OptimizerSettings
{
    public RewardTrainingOptions()
    {
        Epochs = 4;
        BatchSize = 32;
        LearningRate = 1e-3;
        Betas = (0.9, 0.95);
    }
}

public sealed record RewardTrainingResult(IReadOnlyList<double> ValidationAccuracyPerEpoch, int BestEpoch, int Steps, double Seconds, double TokensPerSecond)
{
    public double BestValidationAccuracy => ValidationAccuracyPerEpoch[BestEpoch - 1];
}

/// <summary>
/// Bradley–Terry reward-model training for every mode from one code path: score each response as the mean of its
/// segment rewards (the plans decide where to read), minimise −log σ(e(x, y_w) − e(x, y_l)). AdamW with warm-up +
/// cosine and gradient clipping; pairwise accuracy on validation pairs after every epoch; the best epoch's weights
/// are kept.
/// </summary>
public static class RewardModelTrainer
{
    public static RewardTrainingResult Train(RewardModel rm, IReadOnlyList<PlannedPair> train, IReadOnlyList<PlannedPair> validation,
        int padId, RewardTrainingOptions o, Action<string>? progress = null)
    {
        o.Validate();
        if (train.Count == 0) throw new ArgumentException("no training pairs");
        var rng = new SeededRandom(o.Seed);
        var order = Enumerable.Range(0, train.Count).ToArray();
        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize, totalSteps = stepsPerEpoch * o.Epochs, step = 0;
        using var optimizer = o.CreateOptimizer(rm.Parameters());
        var accuracies = new List<double>();
        Dictionary<string, Tensor>? best = null;
        int bestEpoch = 0;
        long tokens = 0;
        var clock = Stopwatch.StartNew();
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            rm.Train(true);
            rng.Shuffle(order);
            double lossSum = 0;
            for (int start = 0; start < order.Length; start += o.BatchSize, step++)
            {
                var pairs = order.Skip(start).Take(o.BatchSize).Select(i => train[i]).ToList();
                o.ScheduleLearningRate(optimizer, step, totalSteps);
                using var scope = NewDisposeScope();
                var rows = pairs.Select(p => p.Chosen).Concat(pairs.Select(p => p.Rejected)).ToList();
                using var batch = new SequenceBatch(rows.Select(r => (r.Prompt, r.Response)).ToList(), padId, rm.Transformer.Device);
                optimizer.zero_grad();
                var scores = RewardScoring.SequenceScores(rm.Values(batch), batch, rows.Select(r => r.Plan).ToList());
                var margin = scores.narrow(0, 0, pairs.Count) - scores.narrow(0, pairs.Count, pairs.Count);
                var loss = -nn.functional.logsigmoid(margin).mean();
                loss.backward();
                nn.utils.clip_grad_norm_(rm.Parameters(), o.GradClip);
                optimizer.step();
                lossSum += loss.item<float>();
                tokens += batch.Lengths.Sum();
            }
            double accuracy = PairwiseAccuracy(rm, validation, padId);
            accuracies.Add(accuracy);
            progress?.Invoke($"rm epoch {epoch}/{o.Epochs}: loss {lossSum / stepsPerEpoch:F4}, validation pairwise accuracy {accuracy:F4}");
            if (best is null || accuracy > accuracies[bestEpoch - 1])
            {
                if (best is not null) foreach (var t in best.Values) t.Dispose();
                best = rm.StateCopy();
                bestEpoch = epoch;
            }
        }
        rm.Restore(best!);
        foreach (var t in best!.Values) t.Dispose();
        rm.Train(false);
        double seconds = clock.Elapsed.TotalSeconds;
        return new RewardTrainingResult(accuracies, bestEpoch, step, seconds, tokens / seconds);
    }

    /// <summary>Share of pairs whose chosen response scores higher (ties count ½).</summary>
    public static double PairwiseAccuracy(RewardModel rm, IReadOnlyList<PlannedPair> pairs, int padId)
    {
        if (pairs.Count == 0) return double.NaN;
        rm.Train(false);
        var chosen = RewardScoring.SegmentRewards(rm, pairs.Select(p => p.Chosen).ToList(), padId);
        var rejected = RewardScoring.SegmentRewards(rm, pairs.Select(p => p.Rejected).ToList(), padId);
        double wins = 0;
        for (int i = 0; i < pairs.Count; i++)
        {
            double a = RewardScoring.SequenceScore(chosen[i]), b = RewardScoring.SequenceScore(rejected[i]);
            wins += a > b ? 1 : a == b ? 0.5 : 0;
        }
        return wins / pairs.Count;
    }
}
