using System.Diagnostics;
using System.Text.Json.Nodes;

namespace RlhfGym.Cli.Tests;

/// <summary>Runs the built `rlhfgym` (copied beside the tests) as a real process.</summary>
internal static class CliRunner
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        /// <summary>The last line of stdout parsed as a JSON object (the --json contract).</summary>
        public JsonObject LastJson()
        {
            var last = StdOut.TrimEnd().Split('\n').Last();
            return JsonNode.Parse(last) as JsonObject ?? throw new InvalidDataException($"last stdout line is not a JSON object: {last}");
        }
    }

    public static Result Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(true); throw new TimeoutException("rlhfgym did not exit"); }
        return new Result(process.ExitCode, stdout, stderr.Result);
    }
}
