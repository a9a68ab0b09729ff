using System.CommandLine;
using RlhfGym.Experiments.Compare;

namespace RlhfGym.Cli.Commands;

/// <summary>A grid to compare, as the command line names it.</summary>
public sealed record CompareRequest(string Name, List<CompareCell> Cells, int Seeds, int Iterations);

/// <summary>
/// The options that say which grid `compare` runs (--preset or --config, --seeds, --iterations, --kl-coefs, --world,
/// --algorithm-assembly). `results` reads the same options from the commands written in docs/results.md.
/// </summary>
public sealed class CompareGridOptions
{
    private readonly Option<string?> preset = new("--preset") { Description = string.Join(" | ", CompareGrid.PresetNames) };
    private readonly Option<string?> config = new("--config") { Description = "grid file {\"cells\":[…]} (docs/compare.md)" };
    private readonly Option<int> seeds = new("--seeds") { Description = "seeds per cell", DefaultValueFactory = _ => 5 };
    private readonly Option<int> iterations = new("--iterations") { Description = "training iterations per run", DefaultValueFactory = _ => new RlhfGym.Agents.Training.TrainerOptions().Iterations };
    private readonly Option<string?> klCoefs = new("--kl-coefs")
    {
        Description = "a KL axis for any grid: comma-separated β values; every cell runs once per β and becomes a gold-vs-KL frontier, compared at matched KL",
    };
    private readonly Option<string?> world = new("--world")
    {
        Description = $"run the grid's PhraseWorld v0 envs in a named world with dials instead: {string.Join(" | ", RlhfGym.PhraseWorld.WorldDials.Named.Keys)} (docs/phraseworld.md)",
    };
    private readonly Option<string[]> assemblies = AlgorithmPluginOptions.Assemblies();

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { preset, config, seeds, iterations, klCoefs, world, assemblies }) command.Options.Add(option);
    }

    /// <summary>The grid the options name; a bad value is an error naming its option.</summary>
    public CompareRequest Read(ParseResult parse, Action<string> progress)
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
        return new CompareRequest(name, cells, CommonOptions.Positive(parse.GetValue(seeds), "--seeds"), CommonOptions.Positive(parse.GetValue(iterations), "--iterations"));
    }

    private static List<double> ParseBetas(string text) => text.Split(',', StringSplitOptions.TrimEntries).Select(t =>
        double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double b)
            ? b
            : throw new ArgumentException($"--kl-coefs must be comma-separated numbers >= 0 (e.g. 0.1,0.3,1); got '{t}' in '{text}'")).ToList();
}
