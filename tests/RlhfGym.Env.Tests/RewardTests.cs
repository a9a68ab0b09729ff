using RlhfGym.Env.Common;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;
using RlhfGym.Env.Training;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Env.Tests;

public class RewardTests
{
    private const int Eos = 2;

    [Fact]
    public void Token_mode_cuts_every_content_token_and_leaves_eos_out()
    {
        var plan = ResponseSegments.Plan(RewardReading.Token, [7, 8, 9, Eos], Eos, default);
        Assert.Equal([new Segment(0, 0), new Segment(1, 1), new Segment(2, 2)], plan.Segments);
        Assert.True(plan.Terminated);
        Assert.Equal(3, plan.ContentLength);
    }

    [Fact]
    public void Bandit_reads_once_at_eos_and_segment_mode_follows_the_entropies()
    {
        var bandit = ResponseSegments.Plan(RewardReading.Bandit, [7, 8, 9, Eos], Eos, default);
        Assert.Equal(1, bandit.Count);
        Assert.Equal(3, bandit.ReadPosition(0));
        float[] h = [0.1f, 3f, 0.2f, 0.1f];
        var seg = ResponseSegments.Plan(RewardReading.Segment(2.0), [7, 8, 9, Eos], Eos, h);
        Assert.Equal([new Segment(0, 1), new Segment(2, 2)], seg.Segments);
        Assert.Throws<ArgumentException>(() => ResponseSegments.Plan(RewardReading.Segment(2.0), [7, 8, 9, Eos], Eos, [0.1f]));
    }

    [Fact]
    public void Eos_only_and_truncated_responses()
    {
        Assert.Equal(0, ResponseSegments.Plan(RewardReading.Token, [Eos], Eos, default).Count);
        Assert.Equal(0, ResponseSegments.Plan(RewardReading.Segment(), [Eos], Eos, [1f]).Count);
        Assert.Equal(0, ResponseSegments.Plan(RewardReading.Bandit, [Eos], Eos, default).ReadPosition(0));
        var truncated = ResponseSegments.Plan(RewardReading.Token, [7, 8], Eos, default);
        Assert.False(truncated.Terminated);
        Assert.Equal(2, truncated.Count); // no EOS: the last token is content
        Assert.Throws<ArgumentException>(() => ResponseSegments.Plan(RewardReading.Token, [], Eos, default));
    }

    [Fact]
    public void Sequence_score_is_the_mean_of_the_segment_reads()
    {
        using var batch = new SequenceBatch([([1, 1], [5, 6, 7, Eos]), ([1], [Eos])], padId: 0, CPU);
        var values = arange(batch.Width * 2, ScalarType.Float32).reshape(2, batch.Width);
        var plans = new[]
        {
            new ResponseSegments([new Segment(0, 1), new Segment(2, 2)], 3, true), // reads at 2+1 and 2+2
            new ResponseSegments([], 0, true),
        };
        var scores = RewardScoring.SequenceScores(values, batch, plans).data<float>().ToArray();
        Assert.Equal((3f + 4f) / 2, scores[0]);
        Assert.Equal(0f, scores[1]);
    }

    [Fact]
    public void Mode_names_parse_and_bad_values_are_named()
    {
        Assert.Equal(RewardMode.Token, RewardReading.Parse("token").Mode);
        Assert.Equal(1.5, RewardReading.Parse("segment", 1.5).CEnt);
        Assert.Contains("bandit, token or segment", Assert.Throws<ArgumentException>(() => RewardReading.Parse("dense")).Message);
        Assert.Contains("c_ent", Assert.Throws<ArgumentException>(() => RewardReading.Parse("segment", double.NaN)).Message);
    }

    [Fact]
    public void Bradley_terry_training_learns_a_planted_preference_and_keeps_the_best_epoch()
    {
        // Chosen responses contain token 5 somewhere, rejected ones token 6; everything else is shared noise.
        var rng = new SeededRandom(1);
        PlannedResponse Response(int marker)
        {
            var tokens = Enumerable.Range(0, 4).Select(_ => 10 + rng.Next(20)).ToList();
            tokens.Insert(rng.Next(5), marker);
            tokens.Add(Eos);
            var arr = tokens.ToArray();
            return new PlannedResponse([3, 4], arr, ResponseSegments.Plan(RewardReading.Token, arr, Eos, default));
        }
        var train = Enumerable.Range(0, 256).Select(_ => new PlannedPair(Response(5), Response(6))).ToList();
        var validation = Enumerable.Range(0, 64).Select(_ => new PlannedPair(Response(5), Response(6))).ToList();
        random.manual_seed(4);
        var config = new TransformerConfig { VocabSize = 32, DModel = 32, NLayers = 1, NHeads = 2, NKvHeads = 2, DFf = 64, MaxSeqLen = 16 };
        using var rm = new RewardModel(new CausalTransformer(config), new ScalarHead(32));
        double before = RewardModelTrainer.PairwiseAccuracy(rm, validation, 0);
        var result = RewardModelTrainer.Train(rm, train, validation, 0, new RewardTrainingOptions { Epochs = 3, LearningRate = 3e-3 });
        double after = RewardModelTrainer.PairwiseAccuracy(rm, validation, 0);
        Assert.True(after >= 0.95, $"accuracy {before} → {after}");
        Assert.Equal(result.ValidationAccuracyPerEpoch.Max(), result.BestValidationAccuracy);
        Assert.Equal(result.BestValidationAccuracy, after, 9); // the kept weights are the best epoch's
    }

    [Fact]
    public void Spearman_handles_ties_and_order()
    {
        Assert.Equal(1.0, Statistics.Spearman([1, 2, 3, 4], [10, 20, 30, 40]), 12);
        Assert.Equal(-1.0, Statistics.Spearman([1, 2, 3, 4], [4, 3, 2, 1]), 12);
        Assert.Equal([1.5, 1.5, 3], Statistics.Ranks([5, 5, 7]));
    }
}
