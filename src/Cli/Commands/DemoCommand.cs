using System.CommandLine;
using RlhfGym.Experiments.Demo;
using RlhfGym.Models;
using Spectre.Console;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym demo`: the main job on the built-in defaults.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var outDir = new Option<string?>("--out") { Description = "report directory (default runs/<timestamp>)" };
        var iterations = new Option<int>("--iterations") { Description = "PPO iterations per mode", DefaultValueFactory = _ => 80 };
        var numEnvs = new Option<int>("--num-envs") { Description = "episodes per PPO iteration", DefaultValueFactory = _ => 64 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("demo", "build PhraseWorld, SFT and the three reward models, train PPO per mode, and write a report") { outDir, iterations, numEnvs, seed, device };
        VerbRunner.Set(command, (parse, _) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            string dir = parse.GetValue(outDir) ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss"));
            var result = new DemoPipeline(dev, line => console.MarkupLineInterpolated($"[grey]{line}[/]")).Run(dir,
                CommonOptions.Positive(parse.GetValue(iterations), "--iterations"), parse.GetValue(seed), CommonOptions.Positive(parse.GetValue(numEnvs), "--num-envs"));
            console.Write(ResultsTable(result));
            return result;
        });
        return command;
    }

    // The per-mode results as a terminal table (stderr): gold, win rates, KL and length against the SFT row.
    private static Table ResultsTable(System.Text.Json.Nodes.JsonObject result)
    {
        var table = new Table().AddColumns("mode", "gold", "win rate vs SFT", "LC win rate", "KL", "length");
        foreach (var mode in DemoPipeline.Modes)
        {
            var m = result[mode]!;
            table.AddRow(mode, $"{m["gold_score"]}", $"{m["win_rate_vs_sft"]}", RlhfGym.Env.Judging.LengthControlledWinRate.Text(m["lc_win_rate"]), $"{m["kl"]}", $"{m["length"]}");
        }
        table.AddRow("SFT", $"{result["sft_gold_score"]}", "0.5", "0.5", "0", "");
        return table;
    }
}
