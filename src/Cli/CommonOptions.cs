using System.CommandLine;

namespace RlhfGym.Cli;

/// <summary>Options every verb shares.</summary>
public static class CommonOptions
{
    /// <summary>Print exactly one JSON object with the verb's figures as the last line of stdout.</summary>
    public static readonly Option<bool> Json = new("--json")
    {
        Description = "print the verb's figures as one JSON object on the last line of stdout",
        Recursive = true,
    };

    public static Option<string> Device() => new("--device")
    {
        Description = "auto (CUDA when available), cpu or cuda[:N]",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<long> Seed(long defaultSeed = 1) => new("--seed")
    {
        Description = "random seed",
        DefaultValueFactory = _ => defaultSeed,
    };

    /// <summary>An option value that must be > 0, or an error naming the option.</summary>
    public static int Positive(int value, string name) =>
        value > 0 ? value : throw new ArgumentException($"{name} must be > 0, got {value}");
}
