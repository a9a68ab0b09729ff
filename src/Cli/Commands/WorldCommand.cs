using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym world ...`: build the PhraseWorld benchmark and inspect it.</summary>
public static class WorldCommand
{
    public static Command Create()
    {
        var world = new Command("world", "the built-in PhraseWorld benchmark (a synthetic world with a gold judge)");
        world.Subcommands.Add(Build());
        world.Subcommands.Add(Segmentation());
        world.Subcommands.Add(Eval());
        return world;
    }

    private static Command Build()
    {
        var outDir = new Option<string>("--out") { Description = "directory to write the world into", Required = true };
        var seed = CommonOptions.Seed();
        var named = new Option<string?>("--dials") { Description = $"a named world's dials: {string.Join(" | ", WorldDials.Named.Keys)} (docs/phraseworld.md, \"World dials\")" };
        var locationTrend = new Option<double?>("--location-trend") { Description = "τ in [0, 1]: later content phrases are worth more (default 0, or the named world's)" };
        var boundaryNoise = new Option<double?>("--boundary-noise") { Description = "ρ in [0, 1]: branch stems and collocations that blur phrase boundaries (default 0, or the named world's)" };
        var verbosityBias = new Option<double?>("--verbosity-bias") { Description = "b in [0, 1] gold per token: preference labels favour longer responses (default 0, or the named world's)" };
        var command = new Command("build", "build a world and its SFT and preference datasets from a seed") { outDir, seed, named, locationTrend, boundaryNoise, verbosityBias };
        VerbRunner.Set(command, (parse, progress) =>
        {
            string dir = parse.GetValue(outDir)!;
            var dials = parse.GetValue(named) is { } name
                ? WorldDials.Named.GetValueOrDefault(name) ?? throw new ArgumentException($"--dials must be one of {string.Join(", ", WorldDials.Named.Keys)}; got '{name}'")
                : WorldDials.None;
            dials = dials with
            {
                LocationTrend = parse.GetValue(locationTrend) ?? dials.LocationTrend,
                BoundaryNoise = parse.GetValue(boundaryNoise) ?? dials.BoundaryNoise,
                VerbosityBias = parse.GetValue(verbosityBias) ?? dials.VerbosityBias,
            };
            WorldDials.Check(dials.LocationTrend, "--location-trend");
            WorldDials.Check(dials.BoundaryNoise, "--boundary-noise");
            WorldDials.Check(dials.VerbosityBias, "--verbosity-bias");
            progress($"world build: seed {parse.GetValue(seed)} → {dir}");
            var (w, sft, pairs) = WorldStore.Build(dir, parse.GetValue(seed), dials: dials);
            var judge = new GoldJudge(w);
            var testPrompts = w.Split("test").ToList();
            double best = testPrompts.Average(judge.BestScore);
            double behaviour = sft.Average(e => e.Gold);
            return new JsonObject
            {
                ["world"] = Path.GetFullPath(dir),
                ["seed"] = w.Seed,
                ["topics"] = w.Topics.Count,
                ["phrases"] = w.Phrases.Count,
                ["vocab_size"] = w.Tokenizer.VocabSize,
                ["prompts_train"] = w.Split("train").Count(),
                ["prompts_validation"] = w.Split("validation").Count(),
                ["prompts_test"] = testPrompts.Count,
                ["sft_examples"] = sft.Count,
                ["preference_pairs"] = pairs.Count,
                ["behaviour_mean_gold"] = Math.Round(behaviour, 4),
                ["best_mean_gold_test"] = Math.Round(best, 4),
                ["headroom"] = Math.Round(best - behaviour, 4),
                ["pair_label_agreement_with_gold"] = Math.Round(pairs.Average(p => p.ChosenGold > p.RejectedGold ? 1.0 : p.ChosenGold == p.RejectedGold ? 0.5 : 0.0), 4),
                // How often the chosen response is the longer one (ties ½): what a verbosity bias moves.
                ["pair_label_prefers_longer"] = Math.Round(pairs.Average(p => p.Chosen.Length > p.Rejected.Length ? 1.0 : p.Chosen.Length == p.Rejected.Length ? 0.5 : 0.0), 4),
                ["dials"] = w.Dials.ToJson(),
            };
        });
        return command;
    }

    private static Command Segmentation()
    {
        var worldDir = new Option<string>("--world") { Description = "world directory", Required = true };
        var modelDir = new Option<string>("--model") { Description = "reference LM directory (the SFT model)", Required = true };
        var perPrompt = new Option<int>("--samples-per-prompt") { Description = "behaviour responses per validation prompt", DefaultValueFactory = _ => 20 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("segmentation", "entropy segmentation vs the gold phrase boundaries over a c_ent sweep")
        {
            worldDir, modelDir, perPrompt, seed, device,
        };
        VerbRunner.Set(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var w = WorldStore.Load(parse.GetValue(worldDir)!);
            using var model = PhraseWorldSft.Load(parse.GetValue(modelDir)!, w, dev);
            int n = CommonOptions.Positive(parse.GetValue(perPrompt), "--samples-per-prompt");
            var behaviour = new BehaviourPolicy(w);
            var rng = new SeededRandom(parse.GetValue(seed));
            var data = w.Split("validation").SelectMany(p => Enumerable.Range(0, n).Select(_ => (p, behaviour.Sample(p, rng)))).ToList();
            progress($"world segmentation: {data.Count} responses, {SegmentationDiagnostics.DefaultThresholds.Length} thresholds");
            var sweep = SegmentationDiagnostics.Sweep(model, w, data, SegmentationDiagnostics.DefaultThresholds);
            var best = sweep.MaxBy(p => p.F1)!; // the first (lowest) threshold reaching the best F1
            var paper = sweep.Single(p => p.CEnt == 2.0); // the sweep includes the paper's Llama threshold
            return new JsonObject
            {
                ["responses"] = data.Count,
                ["best_c_ent"] = best.CEnt,
                ["best_f1"] = Math.Round(best.F1, 4),
                ["best_precision"] = Math.Round(best.Precision, 4),
                ["best_recall"] = Math.Round(best.Recall, 4),
                ["f1_at_c_ent_2"] = Math.Round(paper.F1, 4),
                ["sweep"] = new JsonArray(sweep.Select(p => (JsonNode)new JsonObject
                {
                    ["c_ent"] = p.CEnt,
                    ["precision"] = Math.Round(p.Precision, 4),
                    ["recall"] = Math.Round(p.Recall, 4),
                    ["f1"] = Math.Round(p.F1, 4),
                    ["segments_per_response"] = Math.Round(p.SegmentsPerResponse, 3),
                }).ToArray()),
            };
        });
        return command;
    }

    private static Command Eval()
    {
        var worldDir = new Option<string>("--world") { Description = "world directory", Required = true };
        var modelDir = new Option<string>("--model") { Description = "model directory to evaluate", Required = true };
        var referenceDir = new Option<string?>("--reference") { Description = "reference model for win rates (default: the SFT model given by --model itself)" };
        var perPrompt = new Option<int>("--samples-per-prompt") { Description = "responses per test prompt", DefaultValueFactory = _ => 32 };
        var split = new Option<string>("--split") { Description = "prompt split to evaluate on", DefaultValueFactory = _ => "test" };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("eval", "gold score, win rate and length-controlled win rate vs the SFT model on held-out prompts")
        {
            worldDir, modelDir, referenceDir, perPrompt, split, seed, device,
        };
        VerbRunner.Set(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var w = WorldStore.Load(parse.GetValue(worldDir)!);
            string which = parse.GetValue(split)!;
            if (which is not ("train" or "validation" or "test")) throw new ArgumentException($"--split must be train, validation or test, got '{which}'");
            int n = CommonOptions.Positive(parse.GetValue(perPrompt), "--samples-per-prompt");
            var prompts = w.Split(which).SelectMany(p => Enumerable.Repeat(p, n)).ToList();
            long s = parse.GetValue(seed);
            using var model = PhraseWorldSft.Load(parse.GetValue(modelDir)!, w, dev);
            progress($"world eval: sampling {prompts.Count} responses");
            var policy = PhraseWorldSft.Sample(model, w, prompts, s);
            string refDir = parse.GetValue(referenceDir) ?? parse.GetValue(modelDir)!;
            using var reference = PhraseWorldSft.Load(refDir, w, dev);
            var refResponses = PhraseWorldSft.Sample(reference, w, prompts, s + 7919);
            var e = WorldEvaluator.Evaluate(w, prompts, policy, refResponses);
            var judge = new GoldJudge(w);
            return new JsonObject
            {
                ["split"] = which,
                ["responses"] = e.Responses,
                ["gold_score"] = Math.Round(e.MeanGold, 4),
                ["reference_gold_score"] = Math.Round(e.ReferenceMeanGold, 4),
                ["best_gold_score"] = Math.Round(prompts.Average(judge.BestScore), 4),
                ["win_rate_vs_sft"] = Math.Round(e.WinRateVsReference, 4),
                ["lc_win_rate"] = e.LcWinRateVsReference is { } lc ? Math.Round(lc, 4) : null,
                ["lc_glm_failed"] = e.LengthControlled.GlmFailed,
                ["mean_length"] = Math.Round(e.MeanLength, 3),
                ["eos_rate"] = Math.Round(e.EosRate, 4),
                ["repetition_rate"] = Math.Round(e.RepetitionRate, 4),
            };
        });
        return command;
    }
}
