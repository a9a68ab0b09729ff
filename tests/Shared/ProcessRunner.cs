using System.Diagnostics;
using System.Text.Json.Nodes;

namespace RlhfGym.Tests;

/// <summary>Runs a real process to completion: exit code, stdout and stderr, with a timeout that kills its tree.</summary>
internal static class ProcessRunner
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        /// <summary>The last line of stdout parsed as a JSON object (the --json contract of every rlhfgym verb).</summary>
        public JsonObject LastJson()
        {
            var last = StdOut.TrimEnd().Split('\n').Last();
            return JsonNode.Parse(last) as JsonObject ?? throw new InvalidDataException($"last stdout line is not a JSON object: {last}");
        }

        /// <summary>What to show when a test fails on this run.</summary>
        public string Describe() => $"exit {ExitCode}\n--- stdout (tail)\n{Tail(StdOut)}\n--- stderr (tail)\n{Tail(StdErr)}";

        private static string Tail(string text) => text.Length <= 4000 ? text : "…" + text[^4000..];
    }

    public static Result Run(string fileName, IEnumerable<string> args, TimeSpan timeout, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} did not exit within {timeout}");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}
