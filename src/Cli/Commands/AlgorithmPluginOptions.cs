using System.CommandLine;
using RlhfGym.Agents.Algorithms;

namespace RlhfGym.Cli.Commands;

/// <summary>`--algorithm-assembly PATH` (train, compare): algorithms of your own, loaded before the agent name is checked.</summary>
internal static class AlgorithmPluginOptions
{
    public static Option<string[]> Assemblies() => new("--algorithm-assembly")
    {
        Description = "a .NET assembly whose IAlgorithmPlugin classes register algorithms (repeatable); then --agent can name them",
        AllowMultipleArgumentsPerToken = false,
    };

    public static void Load(ParseResult parse, Option<string[]> option, Action<string> progress)
    {
        foreach (var path in parse.GetValue(option) ?? [])
        {
            var names = AlgorithmAssemblies.Load(path);
            progress($"algorithm assembly {Path.GetFullPath(path)}: registered {(names.Count == 0 ? "nothing new" : string.Join(", ", names))}");
        }
    }

    /// <summary>KEY=VALUE pairs into a dictionary; a malformed or repeated pair is an error naming the option.</summary>
    public static IReadOnlyDictionary<string, string> KeyValues(string[] pairs, string option)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"{option} must be KEY=VALUE; got '{pair}'");
            if (!result.TryAdd(pair[..eq], pair[(eq + 1)..])) throw new ArgumentException($"{option}: '{pair[..eq]}' given twice");
        }
        return result;
    }
}
