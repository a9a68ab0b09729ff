using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym sft`: train the PhraseWorld SFT model and check it imitates the behaviour.</summary>
public static class SftCommand
{
    public static Command Create()
    {
        var world = new Option<string>("--world") { Description = "world directory (rlhfgym world build)", Required = true };
        var outDir = new Option<string>("--out") { Description = "directory to write the SFT model into", Required = true };
        var epochs = new Option<int>("--epochs") { Description = "passes over the SFT data", DefaultValueFactory = _ => new SftOptions().Epochs };
        var lr = new Option<double>("--lr") { Description = "peak learning rate", DefaultValueFactory = _ => new SftOptions().LearningRate };
        var samples = new Option<int>("--eval-samples-per-prompt") { Description = "samples per test prompt for the fidelity check", DefaultValueFactory = _ => 96 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("sft", "train the SFT model on a world's behaviour data (loss on response tokens only)")
        {
            world, outDir, epochs, lr, samples, seed, device,
        };
        VerbRunner.Set(command, (parse, progress) =>
        {
            var options = new SftOptions { Epochs = parse.GetValue(epochs), LearningRate = parse.GetValue(lr), Seed = parse.GetValue(seed) };
            int perPrompt = CommonOptions.Positive(parse.GetValue(samples), "--eval-samples-per-prompt");
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var (model, result) = PhraseWorldSft.Train(parse.GetValue(world)!, parse.GetValue(outDir)!, options, dev, progress);
            using (model)
            {
                var w = WorldStore.Load(parse.GetValue(world)!);
                progress("sft: sampling test prompts for the fidelity check");
                var fidelity = PhraseWorldSft.Fidelity(model, w, "test", perPrompt, options.Seed + 1000);
                return new JsonObject
                {
                    ["model"] = Path.GetFullPath(parse.GetValue(outDir)!),
                    ["device"] = dev.ToString(),
                    ["steps"] = result.Steps,
                    ["train_seconds"] = Math.Round(result.Seconds, 1),
                    ["train_tokens_per_s"] = Math.Round(result.TokensPerSecond, 0),
                    ["train_loss"] = Math.Round(result.TrainLoss, 4),
                    ["validation_loss"] = Math.Round(result.ValidationLoss, 4),
                    ["validation_perplexity"] = Math.Round(result.ValidationPerplexity, 4),
                    ["fidelity_samples"] = fidelity.Samples,
                    ["sft_mean_gold"] = Math.Round(fidelity.SftMeanGold, 4),
                    ["behaviour_mean_gold"] = Math.Round(fidelity.BehaviourMeanGold, 4),
                    ["sft_minus_behaviour_gold"] = Math.Round(fidelity.Gap, 4),
                    ["sft_eos_rate"] = Math.Round(fidelity.SftEosRate, 4),
                };
            }
        });
        return command;
    }
}
