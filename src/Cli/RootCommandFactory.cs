using System.CommandLine;
using RlhfGym.Cli.Commands;

namespace RlhfGym.Cli;

/// <summary>The `rlhfgym` verb tree.</summary>
public static class RootCommandFactory
{
    public static RootCommand Create(IServiceProvider services)
    {
        var root = new RootCommand("RlhfGym: text generation as a gym environment with bandit, token and segment rewards.");
        root.Options.Add(CommonOptions.Json);
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(ResultsCommand.Create());
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(WorldCommand.Create());
        root.Subcommands.Add(SftCommand.Create());
        root.Subcommands.Add(NormalizerCommand.Create());
        root.Subcommands.Add(RmCommand.Create());
        root.Subcommands.Add(BundleCommand.Create());
        root.Subcommands.Add(EnvCommand.Create());
        root.Subcommands.Add(TrainCommand.Train());
        root.Subcommands.Add(TrainCommand.Eval());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(HealthCommand.Create());
        root.Subcommands.Add(KeysCommand.Create());
        root.Subcommands.Add(ExportCommand.Create());
        return root;
    }
}
