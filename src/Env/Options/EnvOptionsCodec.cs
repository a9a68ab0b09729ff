using System.Globalization;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Options;

/// <summary>
/// <see cref="EnvOptions"/> to and from text, one key per option (<see cref="EnvOptionTable"/>): the one parser behind
/// CLI flags, the wire's "make" options, compare grids and env.json, so they all accept and refuse the same values.
/// Strict: booleans are true/false, choices one of their words (both in any case), numbers invariant-culture and in
/// range, unknown keys refused; every refusal is an <see cref="EnvOptionException"/> naming the key.
/// </summary>
public static class EnvOptionsCodec
{
    /// <summary>Every option as canonical text (c_ent is "" unless the reading is segment).</summary>
    public static Dictionary<string, string> Encode(EnvOptions options) => EnvOptionTable.All.ToDictionary(o => o.Key, o => o.Get(options));

    /// <summary>Apply the given options over <paramref name="baseOptions"/> (a bundle's defaults); absent keys keep them.</summary>
    public static EnvOptions Decode(IReadOnlyDictionary<string, string>? text, EnvOptions baseOptions)
    {
        if (text is null || text.Count == 0) return baseOptions;
        foreach (var key in text.Keys)
            if (EnvOptionTable.Find(key) is null)
                throw Unknown(key);
        var result = baseOptions;
        foreach (var option in EnvOptionTable.All) // table order, not the map's (see EnvOptionTable)
        {
            if (!text.TryGetValue(option.Key, out var value) || (option.BlankMeansUnset && value == "")) continue;
            result = option.Set(result, Canonical(option, value));
        }
        Validate(result);
        return result;
    }

    /// <summary>Check one option's value; returns it in canonical form (lower case, invariant number formatting).</summary>
    public static string Canonical(string key, string value) =>
        Canonical(EnvOptionTable.Find(key) ?? throw Unknown(key), value);

    // A number as written: sign, digits, point, exponent; no surrounding spaces (refused in every other type too).
    private const NumberStyles StrictNumber = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;

    public static string Canonical(EnvOption option, string value)
    {
        if (value is null) throw Invalid(option, null); // a nil in a client's options map
        string v = value;
        switch (option.Type)
        {
            case EnvOptionType.Choice:
                if (option.Allowed.FirstOrDefault(a => a.Equals(v, StringComparison.OrdinalIgnoreCase)) is { } word) return word;
                break;
            case EnvOptionType.Boolean:
                if (v.Equals("true", StringComparison.OrdinalIgnoreCase)) return "true";
                if (v.Equals("false", StringComparison.OrdinalIgnoreCase)) return "false";
                break;
            case EnvOptionType.Integer:
                if (int.TryParse(v, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) && option.InRange(i))
                    return i.ToString(CultureInfo.InvariantCulture);
                break;
            case EnvOptionType.Number:
                if (double.TryParse(v, StrictNumber, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) && option.InRange(d))
                    return d.ToString("R", CultureInfo.InvariantCulture);
                break;
        }
        throw Invalid(option, value);
    }

    /// <summary>Whether every option of <paramref name="options"/> is in its range (what <see cref="EnvOptions.Validate"/> checks).</summary>
    public static void Validate(EnvOptions options)
    {
        foreach (var option in EnvOptionTable.All)
        {
            string v = option.Get(options);
            if (option.BlankMeansUnset && v == "") continue;
            if (Canonical(option, v) != v) throw Invalid(option, v); // e.g. a prompt split in capitals set in code
        }
        if (options.LengthNorm)
        {
            // Each of these would make length_norm mean nothing or something the released code never did.
            string? clash = options.Reading.Mode == RewardMode.Bandit ? "a bandit reading pays one sequence reward, not per-token rewards"
                : options.DenseAsBandit ? "dense_as_bandit pays one reward at the end, not per-token rewards"
                : options.Delivery == RewardDelivery.Online ? "online delivery pays before the response's length is known"
                : null;
            if (clash is not null) throw new EnvOptionException("length_norm", $"option 'length_norm' cannot be true here: {clash}");
        }
    }

    private static EnvOptionException Unknown(string key) =>
        new(key, $"unknown option '{key}' (known: {string.Join(", ", EnvOptionTable.Keys)})");

    private static EnvOptionException Invalid(EnvOption option, string? value) =>
        new(option.Key, $"option '{option.Key}' must be {(option.Type == EnvOptionType.Choice ? "one of " : "")}{option.Accepts}; got {(value is null ? "nil (no value)" : $"'{value}'")}");
}
