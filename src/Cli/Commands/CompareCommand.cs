using System.CommandLine;
using RlhfGym.Experiments.Compare;
using RlhfGym.Models;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym compare`: the paper's comparisons as a resumable grid of runs with confidence intervals.</summary>
public static class CompareCommand
{
    public static Command Create()
    {
        var grid = new CompareGridOptions();
        var outDir = new Option<string?>("--out") { Description = "output directory (default runs/compare-<preset>)" };
        var runStore = new Option<string?>("--run-store")
        {
            Description = "keep runs in a store shared between grids, filed under the setting they train (env, agent, options, β, iterations), so a setting two grids share trains once (docs/compare.md)",
        };
        var device = CommonOptions.Device();
        var command = new Command("compare", "run a grid of reward settings × seeds; resumable; mean ± 95% CI tables and a plot") { outDir, runStore, device };
        grid.AddTo(command);
        VerbRunner.Set(command, (parse, progress) =>
        {
            var request = grid.Read(parse, progress);
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var store = parse.GetValue(runStore) is { } root ? new RunStore(root) : null;
            return new CompareRunner(dev, progress).Run(parse.GetValue(outDir) ?? Path.Combine("runs", $"compare-{request.Name}"), request.Cells,
                request.Seeds, request.Iterations, store);
        });
        return command;
    }
}
