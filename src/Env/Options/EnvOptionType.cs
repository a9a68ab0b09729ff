namespace RlhfGym.Env.Options;

/// <summary>How an env option's value is written as text (docs/env.md, "type" column).</summary>
public enum EnvOptionType
{
    /// <summary>One of a fixed set of words, matched in any case.</summary>
    Choice,
    /// <summary><c>true</c> or <c>false</c>, in any case.</summary>
    Boolean,
    /// <summary>A whole number (invariant culture).</summary>
    Integer,
    /// <summary>A finite floating-point number (invariant culture, e.g. 2.5 or 1e-3).</summary>
    Number,
}
