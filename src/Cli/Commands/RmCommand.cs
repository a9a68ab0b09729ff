using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym rm train`: train a reward model, fit its normalizers and write an env bundle.</summary>
public static class RmCommand
{
    public static Command Create()
    {
        var rm = new Command("rm", "reward models (method.md §1–3)");
        var world = new Option<string>("--world") { Description = "world directory", Required = true };
        var sft = new Option<string>("--sft") { Description = "SFT model directory (reference LM and RM initialisation)", Required = true };
        var mode = new Option<string>("--mode") { Description = "segment, token or bandit", DefaultValueFactory = _ => "segment" };
        var cEnt = new Option<double>("--c-ent") { Description = "entropy threshold for segment mode", DefaultValueFactory = _ => RewardReading.PaperCEnt };
        var outDir = new Option<string>("--out") { Description = "env bundle directory to write", Required = true };
        var name = new Option<string?>("--name") { Description = "bundle name (default PhraseWorld-<Mode>-v0)" };
        var defaults = new RewardTrainingOptions();
        var epochs = new Option<int>("--epochs") { Description = "passes over the training pairs", DefaultValueFactory = _ => defaults.Epochs };
        var lr = new Option<double>("--lr") { Description = "peak learning rate", DefaultValueFactory = _ => defaults.LearningRate };
        var batch = new Option<int>("--batch-size") { Description = "pairs per step", DefaultValueFactory = _ => defaults.BatchSize };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var train = new Command("train", "train a segment, token or bandit reward model and write an env bundle")
        {
            world, sft, mode, cEnt, outDir, name, epochs, lr, batch, seed, device,
        };
        VerbRunner.Set(train, (parse, progress) =>
        {
            var reading = RewardReading.Parse(parse.GetValue(mode)!, parse.GetValue(cEnt));
            var options = defaults with
            {
                Epochs = CommonOptions.Positive(parse.GetValue(epochs), "--epochs"),
                LearningRate = parse.GetValue(lr) > 0 ? parse.GetValue(lr) : throw new ArgumentException($"--lr must be > 0, got {parse.GetValue(lr)}"),
                BatchSize = CommonOptions.Positive(parse.GetValue(batch), "--batch-size"),
                Seed = parse.GetValue(seed),
            };
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            string bundleName = parse.GetValue(name) ?? PhraseWorldPlugin.EnvId(reading.Name);
            var outcome = PhraseWorldRewardModel.TrainBundle(parse.GetValue(world)!, parse.GetValue(sft)!, reading, options,
                parse.GetValue(outDir)!, bundleName, dev, progress);
            var result = new JsonObject { ["bundle"] = Path.GetFullPath(parse.GetValue(outDir)!), ["name"] = bundleName, ["device"] = dev.ToString() };
            foreach (var (k, v) in outcome.Report) result[k] = v?.DeepClone();
            return result;
        });
        rm.Subcommands.Add(train);
        return rm;
    }
}
