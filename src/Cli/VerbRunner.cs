using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfGym.Cli;

/// <summary>
/// Runs a verb body with the CLI's output contract: progress goes to stderr; the result is printed as readable
/// lines and, with --json, as one JSON object on the last line of stdout. Errors print "error: ..." on stderr
/// (and {"error": ...} as the JSON line) and exit 1; RLHFGYM_TRACE=1 adds the stack trace.
/// </summary>
public static class VerbRunner
{
    public static void Set(Command command, Func<ParseResult, Action<string>, JsonObject> body) =>
        command.SetAction(parse => Run(parse, body));

    public static int Run(ParseResult parse, Func<ParseResult, Action<string>, JsonObject> body)
    {
        bool json = parse.GetValue(CommonOptions.Json);
        void Progress(string line) => Console.Error.WriteLine(line);
        try
        {
            var result = body(parse, Progress);
            foreach (var (key, value) in result)
                Console.WriteLine($"{key,-28} {value?.ToJsonString() ?? "null"}");
            if (json) Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        catch (Exception e) // every failure becomes one readable line (and a JSON line), never a stack dump
        {
            if (Environment.GetEnvironmentVariable("RLHFGYM_TRACE") == "1") Console.Error.WriteLine(e);
            return Fail(e.Message, e.GetType().Name, json);
        }
    }

    /// <summary>A failure under the CLI's contract: "error: …" on stderr and, with --json, {"error", "kind"} as the last
    /// line of stdout; the exit code (1) to return.</summary>
    public static int Fail(string message, string kind, bool json)
    {
        Console.Error.WriteLine($"error: {message}");
        if (json) Console.WriteLine(new JsonObject { ["error"] = message, ["kind"] = kind }.ToJsonString());
        return 1;
    }
}
