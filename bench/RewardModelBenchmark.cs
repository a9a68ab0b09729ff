using RlhfGym.Benchmarks;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record RewardModelBenchmarkResult(int Pairs, double TrainTokensPerSecond, double RmForwardSeconds, double SegmentationSeconds)
{
    /// <summary>Segmentation pass (reference forward, fp32 entropies, cuts) over the RM forward on the same responses.</summary>
    public double SegmentationVsRmForward => SegmentationSeconds / RmForwardSeconds;
}

/// <summary>
/// `rlhfgym bench rm`: reward-model training throughput, and what the entropy segmentation pass costs relative to
/// the RM's own forward — measured in one run on PhraseWorld-sized models (random weights: speed does not depend on
/// training) and behaviour responses.
/// </summary>
public static class RewardModelBenchmark
{
    public static RewardModelBenchmarkResult Run(int pairs, int repeats, Device device, long seed = 1, Action<string>? progress = null)
    {
        var world = WorldBuilder.Build(seed);
        var behaviour = new BehaviourPolicy(world);
        var rng = new SeededRandom(seed);
        var prompts = world.Split("train").ToList();
        var raw = Enumerable.Range(0, pairs).Select(i =>
        {
            var p = prompts[i % prompts.Count];
            return (Prompt: p.Tokens, Chosen: behaviour.Sample(p, rng), Rejected: behaviour.Sample(p, rng));
        }).ToList();
        var config = PhraseWorldModels.Config(world.Tokenizer.VocabSize);
        random.manual_seed(seed);
        using var reference = new CausalTransformer(config, device);
        reference.eval();
        using var rm = new RewardModel(new CausalTransformer(config, device), new ScalarHead(config.DModel, device));
        int pad = world.Tokenizer.PadId;

        var responses = raw.SelectMany(r => new[] { (r.Prompt, r.Chosen), (r.Prompt, r.Rejected) }).ToList();
        PlannedResponse Planned((int[] Prompt, int[] Response) r) => new(r.Prompt, r.Response, ResponseSegments.Plan(RewardReading.Token, r.Response, world.EosId, default));
        var planned = responses.Select(Planned).ToList();

        progress?.Invoke("bench rm: segmentation pass vs RM forward");
        double segmentation = Stopwatches.MedianSeconds(repeats, () =>
        {
            new ScoringPipeline(reference, null, pad).Plan(responses, RewardReading.Segment(), _ => world.EosId);
        });
        double forward = Stopwatches.MedianSeconds(repeats, () => RewardScoring.SegmentRewards(rm, planned, pad));

        progress?.Invoke("bench rm: training steps");
        var trainPairs = Enumerable.Range(0, pairs).Select(i => new PlannedPair(planned[2 * i], planned[2 * i + 1])).ToList();
        var result = RewardModelTrainer.Train(rm, trainPairs, [], pad, new RewardTrainingOptions { Epochs = 1, Seed = seed });
        return new RewardModelBenchmarkResult(pairs, result.TokensPerSecond, forward, segmentation);
    }
}
