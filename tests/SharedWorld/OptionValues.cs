using RlhfGym.Env.Options;

namespace RlhfGym.Tests;

/// <summary>Option values for the tests that walk the whole options table.</summary>
internal static class OptionValues
{
    /// <summary>A valid value other than the option's default, as the codec's text.</summary>
    public static string NonDefault(EnvOption option) => option.Type switch
    {
        EnvOptionType.Choice => option.Allowed.First(a => a != option.Default),
        EnvOptionType.Boolean => "true",
        EnvOptionType.Integer => "9",
        _ => "1.75",
    };
}
