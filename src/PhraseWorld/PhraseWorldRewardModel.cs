using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// The paper's first half on PhraseWorld: plan every pair response for the reward mode (entropy cuts from the frozen
/// SFT reference), train the reward model from the SFT model, evaluate it against the gold judge, fit the normalizers
/// on the RM's own training responses (chosen and rejected), and write an env bundle.
/// </summary>
public static class PhraseWorldRewardModel
{
    public sealed record Outcome(RewardTrainingResult Training, RewardModelEvaluation Evaluation,
        IReadOnlyDictionary<NormalizerKind, NormalizerFitReport> Normalizers, double SegmentsPerResponse, JsonObject Report);

    public static Outcome TrainBundle(string worldDir, string sftDir, RewardReading reading, RewardTrainingOptions options,
        string bundleDir, string bundleName, Device device, Action<string>? progress = null)
    {
        var world = WorldStore.Load(worldDir);
        var pairs = WorldStore.LoadPairs(worldDir, world);
        using var reference = PhraseWorldSft.Load(sftDir, world, device);
        var train = Plan(world, pairs.Where(p => p.Split == "train").ToList(), reading, reference);
        var validationPairs = pairs.Where(p => p.Split == "validation").ToList();
        var validation = Plan(world, validationPairs, reading, reference);
        double segmentsPerResponse = train.Average(p => (p.Chosen.Plan.Count + p.Rejected.Plan.Count) / 2.0);
        progress?.Invoke($"rm {reading.Name}: {train.Count} training pairs, {validation.Count} validation pairs, {segmentsPerResponse:F2} segments per response");

        random.manual_seed(options.Seed);
        using var rm = RewardModel.FromSft(sftDir, device);
        var training = RewardModelTrainer.Train(rm, train, validation, world.Tokenizer.PadId, options, progress);
        var evaluation = RewardModelEvaluator.Evaluate(rm, world, validationPairs.Select(p => world.Prompt(p.PromptId)).ToList(), validation, reading);

        // Normalizers are fitted on the raw segment rewards of the RM's own training responses (the paper's choice),
        // read by the same scoring pipeline the env's score endpoint uses.
        var fitRows = train.SelectMany(p => new[] { (p.Chosen.Prompt, p.Chosen.Response), (p.Rejected.Prompt, p.Rejected.Response) }).ToList();
        var raw = new ScoringPipeline(reference, rm, world.Tokenizer.PadId).RawSegmentRewards(fitRows, reading, [world.EosId], PhraseWorldModels.MaxNewTokens);
        var fits = NormalizerFitter.FitAll(reading.Mode, raw);

        var report = Report(reading, training, evaluation, fits, segmentsPerResponse);
        var defaults = new EnvOptions { Reading = reading, MaxNewTokens = PhraseWorldModels.MaxNewTokens };
        var prompts = world.Prompts.Select(p => new BundlePrompt(p.Id, p.Split, p.Text, p.Tokens)).ToList();
        EnvBundle.Write(bundleDir, bundleName, defaults, world.Tokenizer, prompts, fits.ToDictionary(kv => kv.Key, kv => kv.Value.Normalizer),
            reference, rm, PhraseWorldPlugin.BundleJudge(world), report);
        return new Outcome(training, evaluation, fits, segmentsPerResponse, report);
    }

    /// <summary>Plan both responses of every pair; entropies come from one batched pass of the reference when needed.</summary>
    public static List<PlannedPair> Plan(World world, IReadOnlyList<PreferencePair> pairs, RewardReading reading, CausalTransformer reference)
    {
        var prompts = pairs.Select(p => world.Prompt(p.PromptId).Tokens).ToList();
        var responses = pairs.Select(p => p.Chosen).Concat(pairs.Select(p => p.Rejected)).ToList();
        var planned = new ScoringPipeline(reference, null, world.Tokenizer.PadId)
            .Plan(responses.Select((r, i) => (prompts[i % pairs.Count], r)).ToList(), reading, _ => world.EosId);
        return Enumerable.Range(0, pairs.Count).Select(i => new PlannedPair(planned[i], planned[pairs.Count + i])).ToList();
    }

    private static JsonObject Report(RewardReading reading, RewardTrainingResult t, RewardModelEvaluation e,
        Dictionary<NormalizerKind, NormalizerFitReport> fits, double segmentsPerResponse)
    {
        var location = fits[NormalizerKind.Location];
        return new JsonObject
        {
            ["mode"] = reading.Name,
            ["c_ent"] = reading.Mode == RewardMode.Segment ? reading.CEnt : null,
            ["pairwise_accuracy"] = Math.Round(e.PairwiseAccuracy, 4),
            ["gold_spearman"] = Math.Round(e.GoldSpearman, 4),
            ["segment_gold_correlation"] = e.SegmentGoldCorrelation is { } c ? Math.Round(c, 4) : null,
            ["validation_pairs"] = e.Pairs,
            ["segments_per_response"] = Math.Round(segmentsPerResponse, 3),
            ["best_epoch"] = t.BestEpoch,
            ["validation_accuracy_per_epoch"] = new JsonArray(t.ValidationAccuracyPerEpoch.Select(a => (JsonNode)Math.Round(a, 4)).ToArray()),
            ["train_steps"] = t.Steps,
            ["train_seconds"] = Math.Round(t.Seconds, 1),
            ["train_tokens_per_s"] = Math.Round(t.TokensPerSecond, 0),
            ["normalizer"] = location.Normalizer.ToJson(),
            ["normalizer_fit_segments"] = location.Segments,
            ["normalizer_clamped_fraction"] = Math.Round(location.ClampedFraction, 4),
            ["normalizer_clamped_below_p"] = location.ClampedBelowP,
        };
    }
}
