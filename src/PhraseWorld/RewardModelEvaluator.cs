using RlhfGym.Env.Common;
using RlhfGym.Env.Rewards;

namespace RlhfGym.PhraseWorld;

public sealed record RewardModelEvaluation(int Pairs, double PairwiseAccuracy, double GoldSpearman, double? SegmentGoldCorrelation, int Segments);

/// <summary>
/// Held-out checks of a PhraseWorld reward model: pairwise accuracy against the (noisy) labels; Spearman correlation
/// of the sequence score with the gold score; and, for dense modes, the Pearson correlation of each segment's raw
/// reward with the gold value of what it covers — each gold phrase's value spread evenly over its tokens, summed over
/// the segment's tokens. The last asks whether a dense RM learned *where* the quality is.
/// </summary>
public static class RewardModelEvaluator
{
    public static RewardModelEvaluation Evaluate(RewardModel rm, World world, IReadOnlyList<WorldPrompt> pairPrompts,
        IReadOnlyList<PlannedPair> pairs, RewardReading reading)
    {
        int pad = world.Tokenizer.PadId;
        var responses = pairs.Select(p => p.Chosen).Concat(pairs.Select(p => p.Rejected)).ToList();
        var rewards = RewardScoring.SegmentRewards(rm, responses, pad);
        var judge = new GoldJudge(world);
        var scores = rewards.Select(RewardScoring.SequenceScore).ToArray();
        double wins = 0;
        for (int i = 0; i < pairs.Count; i++)
            wins += scores[i] > scores[pairs.Count + i] ? 1 : scores[i] == scores[pairs.Count + i] ? 0.5 : 0;

        var gold = new double[responses.Count];
        var segmentRewards = new List<double>();
        var segmentGold = new List<double>();
        for (int i = 0; i < responses.Count; i++)
        {
            var prompt = pairPrompts[i % pairs.Count]; // responses are all chosen, then all rejected
            var verdict = judge.Judge(prompt, responses[i].Response);
            gold[i] = verdict.Score;
            if (reading.Mode == RewardMode.Bandit) continue;
            var perToken = new double[responses[i].Response.Length];
            foreach (var span in verdict.Spans)
                for (int t = span.Start; t <= span.End; t++) perToken[t] = span.Value / (span.End - span.Start + 1);
            var plan = responses[i].Plan;
            for (int k = 0; k < plan.Count; k++)
            {
                double g = 0;
                for (int t = plan.Segments[k].Start; t <= plan.Segments[k].End; t++) g += perToken[t];
                segmentRewards.Add(rewards[i][k]);
                segmentGold.Add(g);
            }
        }
        return new RewardModelEvaluation(pairs.Count, wins / pairs.Count, Statistics.Spearman(scores, gold),
            reading.Mode == RewardMode.Bandit ? null : Statistics.Pearson(segmentRewards, segmentGold), segmentRewards.Count);
    }
}
