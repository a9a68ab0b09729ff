using System.Globalization;
using RlhfGym.Env.Bundles;

namespace RlhfGym.Env.Options;

/// <summary>
/// One env option as every outside form spells it: its key (wire, env.json, compare grids), its command-line flag, its
/// type, allowed values or range, default and a line of documentation. <see cref="EnvOptionTable"/> lists them all.
/// </summary>
public sealed record EnvOption
{
    /// <summary>snake_case key, e.g. <c>max_new_tokens</c>.</summary>
    public required string Key { get; init; }
    public required EnvOptionType Type { get; init; }
    /// <summary>The words a <see cref="EnvOptionType.Choice"/> accepts, lower case; empty for other types.</summary>
    public IReadOnlyList<string> Allowed { get; init; } = [];
    /// <summary>Lower bound of an <see cref="EnvOptionType.Integer"/> or <see cref="EnvOptionType.Number"/>.</summary>
    public double Minimum { get; init; } = double.NegativeInfinity;
    /// <summary>Whether <see cref="Minimum"/> itself is excluded (<c>&gt; 0</c> rather than <c>&gt;= 0</c>).</summary>
    public bool MinimumExclusive { get; init; }
    /// <summary>Whether the empty string is accepted and means "not given" (c_ent, which only a segment reading has:
    /// the spec writes it empty for bandit and token readings).</summary>
    public bool BlankMeansUnset { get; init; }
    public required string Doc { get; init; }

    /// <summary>The option's value in canonical text ("" where it does not apply).</summary>
    internal Func<EnvOptions, string> Get { get; init; } = null!;
    /// <summary>Set the option from canonical text (already checked by the codec).</summary>
    internal Func<EnvOptions, string, EnvOptions> Set { get; init; } = null!;

    /// <summary>The command-line flag: the key in kebab case (<c>--max-new-tokens</c>).</summary>
    public string Flag => "--" + Key.Replace('_', '-');

    /// <summary>The default of a plain <see cref="EnvOptions"/>; a bundle may store other defaults.</summary>
    public string Default => Get(new EnvOptions());

    /// <summary>The range as docs/env.md writes it (<c>&gt; 0</c>, <c>&gt;= 0</c>); empty when unbounded or not a number.</summary>
    public string Range => double.IsNegativeInfinity(Minimum) ? "" : string.Create(CultureInfo.InvariantCulture, $"{(MinimumExclusive ? ">" : ">=")} {Minimum:0.##}");

    /// <summary>What the option accepts, for error messages and help: "even, repeat or none", "an integer > 0" …</summary>
    public string Accepts => Type switch
    {
        EnvOptionType.Choice => OneOf(Allowed),
        EnvOptionType.Boolean => "true or false",
        EnvOptionType.Integer => Range == "" ? "an integer" : $"an integer {Range}",
        _ => Range == "" ? "a finite number" : $"a finite number {Range}",
    };

    internal bool InRange(double v) => MinimumExclusive ? v > Minimum : v >= Minimum;

    internal static string OneOf(IReadOnlyList<string> words) =>
        words.Count <= 1 ? string.Join("", words) : $"{string.Join(", ", words.Take(words.Count - 1))} or {words[^1]}";
}
