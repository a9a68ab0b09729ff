using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.PhraseWorld;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym world ...`: build the PhraseWorld benchmark and inspect it.</summary>
public static class WorldCommand
{
    public static Command Create()
    {
        var world = new Command("world", "the built-in PhraseWorld benchmark (a synthetic world with a gold judge)");
        world.Subcommands.Add(Build());
        return world;
    }

    private static Command Build()
    {
        var outDir = new Option<string>("--out") { Description = "directory to write the world into", Required = true };
        var seed = CommonOptions.Seed();
        var command = new Command("build", "build a world and its SFT and preference datasets from a seed") { outDir, seed };
        VerbRunner.Set(command, (parse, progress) =>
        {
            string dir = parse.GetValue(outDir)!;
            progress($"world build: seed {parse.GetValue(seed)} → {dir}");
            var w = WorldStore.Build(dir, parse.GetValue(seed));
            var judge = new GoldJudge(w);
            var sft = WorldStore.LoadSft(dir, w);
            var pairs = WorldStore.LoadPairs(dir, w);
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
            };
        });
        return command;
    }
}
