using System.CommandLine;
using RlhfGym.Experiments.Compare;
using RlhfGym.Models;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym compare`: the paper's comparisons as a resumable grid of runs with confidence intervals.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var preset = new Option<string?>("--preset") { Description = string.Join(" | ", CompareGrid.PresetNames) };
        var config = new Option<string?>("--config") { Description = "grid file {\"cells\":[…]} (docs/results.md)" };
        var seeds = new Option<int>("--seeds") { Description = "seeds per cell", DefaultValueFactory = _ => 5 };
        var iterations = new Option<int>("--iterations") { Description = "training iterations per run", DefaultValueFactory = _ => new RlhfGym.Agents.Training.TrainerOptions().Iterations };
        var klCoefs = new Option<string?>("--kl-coefs")
        {
            Description = "a KL axis for any grid: comma-separated β values; every cell runs once per β and becomes a gold-vs-KL frontier, compared at matched KL",
        };
        var world = new Option<string?>("--world")
        {
            Description = $"run the grid's PhraseWorld v0 envs in a named world with dials instead: {string.Join(" | ", RlhfGym.PhraseWorld.WorldDials.Named.Keys)} (docs/phraseworld.md)",
        };
        var outDir = new Option<string?>("--out") { Description = "output directory (default runs/compare-<preset>)" };
        var device = CommonOptions.Device();
        var assemblies = AlgorithmPluginOptions.Assemblies();
        var command = new Command("compare", "run a grid of reward settings × seeds; resumable; mean ± 95% CI tables and a plot")
        {
            preset, config, seeds, iterations, klCoefs, world, outDir, device, assemblies,
        };
        VerbRunner.Set(command, (parse, progress) =>
        {
            AlgorithmPluginOptions.Load(parse, assemblies, progress); // before the cells name their agents
            var cells = (parse.GetValue(preset), parse.GetValue(config)) switch
            {
                ({ } p, null) => CompareGrid.Preset(p),
                (null, { } c) => CompareGrid.Load(c),
                _ => throw new ArgumentException("give exactly one of --preset or --config"),
            };
            if (parse.GetValue(klCoefs) is { } betas) cells = CompareGrid.WithKlCoefs(cells, ParseBetas(betas));
            string? worldName = parse.GetValue(world);
            if (worldName is not null) cells = cells.Select(c => c with { Env = RlhfGym.PhraseWorld.PhraseWorldPlugin.InWorld(c.Env, worldName) }).ToList();
            string name = (parse.GetValue(preset) ?? Path.GetFileNameWithoutExtension(parse.GetValue(config)!)) + (worldName is null ? "" : $"-{worldName}");
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            return new CompareRunner(dev, progress).Run(parse.GetValue(outDir) ?? Path.Combine("runs", $"compare-{name}"), cells,
                CommonOptions.Positive(parse.GetValue(seeds), "--seeds"), CommonOptions.Positive(parse.GetValue(iterations), "--iterations"));
        });
        return command;
    }

    private static List<double> ParseBetas(string text) => text.Split(',', StringSplitOptions.TrimEntries).Select(t =>
        double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double b)
            ? b
            : throw new ArgumentException($"--kl-coefs must be comma-separated numbers >= 0 (e.g. 0.1,0.3,1); got '{t}' in '{text}'")).ToList();
}
