namespace RlhfGym.Cli.Tests;

/// <summary>Runs the built `rlhfgym` (copied beside the tests) as a real process.</summary>
internal static class CliRunner
{
    public static ProcessRunner.Result Run(params string[] args) =>
        ProcessRunner.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll"), .. args], TimeSpan.FromMinutes(5));

    public static ProcessRunner.Result Run(string[] args, IReadOnlyDictionary<string, string> environment) =>
        ProcessRunner.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll"), .. args], TimeSpan.FromMinutes(5), environment: environment);
}
