using System.CommandLine;
using RlhfGym.Cli.Demo;
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
            return new DemoPipeline(console, dev).Run(dir, CommonOptions.Positive(parse.GetValue(iterations), "--iterations"), parse.GetValue(seed),
                CommonOptions.Positive(parse.GetValue(numEnvs), "--num-envs"));
        });
        return command;
    }
}
