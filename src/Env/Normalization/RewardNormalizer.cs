using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Env.Normalization;

public enum NormalizerKind { Location, Global, Last, None }

/// <summary>A line a·ln(p + 1e-10) + b.</summary>
public readonly record struct LogLine(double Slope, double Intercept)
{
    public double At(double p) => Slope * Math.Log(p + 1e-10) + Intercept;
}

/// <summary>
/// Normalizes a raw segment reward r_k of segment k (1-based) out of K: r̃ = (r − μ(p)) / σ(p) with p = k/K.
/// <list type="bullet">
/// <item>location (the paper): μ(p), σ(p) are lines in ln p, σ clamped to <see cref="SigmaFloor"/>;</item>
/// <item>global / last: constant μ, σ (of all segment rewards / of last-segment rewards);</item>
/// <item>none: μ 0, σ 1.</item>
/// </list>
/// Bandit mode is one segment per response (p = 1): its μ0, σ0 are a global normalizer over sequence rewards.
/// </summary>
public sealed record RewardNormalizer
{
    public const int FormatVersion = 1;
    public NormalizerKind Kind { get; init; }
    public LogLine Mean { get; init; } = new(0, 0);
    public LogLine Std { get; init; } = new(0, 1);
    /// <summary>σ never goes below this (the fitted σ(p) line reaches 0 for early segments of long responses).</summary>
    public double SigmaFloor { get; init; } = 1e-6;

    public double MeanAt(double p) => Kind == NormalizerKind.Location ? Mean.At(p) : Mean.Intercept;

    public double StdAt(double p) => Math.Max(SigmaFloor, Kind == NormalizerKind.Location ? Std.At(p) : Std.Intercept);

    /// <summary>r̃ for segment k (1-based) of K.</summary>
    public double Normalize(double reward, int k, int count)
    {
        if (count < 1 || k < 1 || k > count) throw new ArgumentOutOfRangeException(nameof(k), k, $"segment index must be in 1..{count}");
        return NormalizeAt(reward, k / (double)count);
    }

    /// <summary>r̃ at location p directly (the env's online delivery uses a location known before the end).</summary>
    public double NormalizeAt(double reward, double p) => (reward - MeanAt(p)) / StdAt(p);

    public static RewardNormalizer Identity => new() { Kind = NormalizerKind.None, Mean = new(0, 0), Std = new(0, 1) };

    public static string KindName(NormalizerKind kind) => kind.ToString().ToLowerInvariant();

    public static NormalizerKind ParseKind(string value) => value switch
    {
        "location" => NormalizerKind.Location,
        "global" => NormalizerKind.Global,
        "last" => NormalizerKind.Last,
        "none" => NormalizerKind.None,
        _ => throw new ArgumentException($"normalizer must be location, global, last or none; got '{value}'"),
    };

    public JsonObject ToJson() => new()
    {
        ["version"] = FormatVersion,
        ["kind"] = KindName(Kind),
        ["mean"] = new JsonObject { ["slope"] = Mean.Slope, ["intercept"] = Mean.Intercept },
        ["std"] = new JsonObject { ["slope"] = Std.Slope, ["intercept"] = Std.Intercept },
        ["sigma_floor"] = SigmaFloor,
    };

    /// <summary>Parse a normalizer object; <paramref name="where"/> names the file (and field) in errors.</summary>
    public static RewardNormalizer FromJson(JsonObject json, string where)
    {
        var line = new JsonLine(where, 1, json);
        int version = line.Int("version");
        if (version != FormatVersion) throw new InvalidDataException($"{where}: field 'version' is {version}, this build reads version {FormatVersion}");
        NormalizerKind kind;
        try { kind = ParseKind(line.String("kind")); }
        catch (ArgumentException e) { throw new InvalidDataException($"{where}: field 'kind': {e.Message}"); }
        LogLine Line(string field)
        {
            var obj = json[field] as JsonObject ?? throw new InvalidDataException($"{where}: field '{field}' must be an object with slope and intercept");
            var l = new JsonLine($"{where} ({field})", 1, obj);
            return new LogLine(l.Double("slope"), l.Double("intercept"));
        }
        double floor = line.Double("sigma_floor");
        if (!(floor > 0)) throw new InvalidDataException($"{where}: field 'sigma_floor' must be > 0, got {floor}");
        return new RewardNormalizer { Kind = kind, Mean = Line("mean"), Std = Line("std"), SigmaFloor = floor };
    }

    public void Save(string path) =>
        AtomicFile.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    public static RewardNormalizer Load(string path) => FromJson(JsonFile.ReadObject(path), path);
}
