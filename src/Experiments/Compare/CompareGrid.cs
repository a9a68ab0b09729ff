using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Algorithms;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Options;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Experiments.Compare;

/// <summary>
/// One cell of a comparison: which reward-model bundle, how the env reads and shapes its rewards, which agent.
/// Null fields keep the bundle's defaults.
/// </summary>
public sealed record CompareCell
{
    public required string Name { get; init; }
    /// <summary>Registry id or bundle directory.</summary>
    public required string Env { get; init; }
    /// <summary>A name in <see cref="AlgorithmRegistry"/>.</summary>
    public string Agent { get; init; } = "ppo";
    public string? Mode { get; init; }
    public double? CEnt { get; init; }
    public string? Normalizer { get; init; }
    public string? Interpolation { get; init; }
    public bool DenseAsBandit { get; init; }
    /// <summary>Per-mode reward scale: divide each token's reward by the response length (docs/env.md, "Length norm").</summary>
    public bool LengthNorm { get; init; }
    /// <summary>overwrite or penalty (docs/env.md); null keeps the bundle's.</summary>
    public string? MissingEos { get; init; }
    public double? MissingEosPenalty { get; init; }
    /// <summary>β of the KL shaping for this cell's runs; null keeps the trainer's default (0.3).</summary>
    public double? KlCoef { get; init; }
    /// <summary>
    /// The frontier this cell is a point of (cells of one series differ only in <see cref="KlCoef"/>); null: the
    /// cell's own name. A series with two or more β values becomes a gold-vs-KL curve (<see cref="KlFrontier"/>).
    /// </summary>
    public string? Series { get; init; }

    /// <summary>The series this cell belongs to.</summary>
    public string SeriesName => Series ?? Name;

    /// <summary>The option keys a cell can set (grid files use the same keys as the wire and env.json).</summary>
    public static IReadOnlyList<string> OptionKeys { get; } = ["mode", "c_ent", "normalizer", "interpolation", "dense_as_bandit", "length_norm", "missing_eos", "missing_eos_penalty"];

    /// <summary>The options this cell sets, as the options codec's text.</summary>
    public Dictionary<string, string> Options()
    {
        var o = new Dictionary<string, string>();
        if (Mode is { } m) o["mode"] = m;
        if (CEnt is { } c) o["c_ent"] = c.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (Normalizer is { } n) o["normalizer"] = n;
        if (Interpolation is { } i) o["interpolation"] = i;
        if (DenseAsBandit) o["dense_as_bandit"] = "true";
        if (LengthNorm) o["length_norm"] = "true";
        if (MissingEos is { } me) o["missing_eos"] = me;
        if (MissingEosPenalty is { } mp) o["missing_eos_penalty"] = mp.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return o;
    }

    /// <summary>The cell's options over a bundle's defaults (<see cref="EnvOptionsCodec"/>: a bad value names its key).</summary>
    public EnvOptions Apply(EnvOptions o) => EnvOptionsCodec.Decode(Options(), o);
}

/// <summary>The comparisons the paper makes (method.md §5), as named presets, or a grid read from a JSON file.</summary>
public static class CompareGrid
{
    private const string Bandit = "PhraseWorld-Bandit-v0", Token = "PhraseWorld-Token-v0", Segment = "PhraseWorld-Segment-v0";

    public static IReadOnlyList<string> PresetNames => ["paper-main", "paper-main-frontier", "paper-normalizer", "paper-interpolation", "paper-cross", "c-ent-sweep", "algorithms"];

    /// <summary>The algorithms preset's agents: cell-name prefix → registered algorithm.</summary>
    private static readonly (string Name, string Agent)[] Algorithms = [("ppo", "ppo"), ("rloo", "reinforce"), ("grpo", "grpo"), ("grpo-process", "grpo-process")];

    public static List<CompareCell> Preset(string name) => name switch
    {
        "paper-main" =>
        [
            new() { Name = "segment", Env = Segment },
            new() { Name = "token", Env = Token },
            new() { Name = "bandit", Env = Bandit },
        ],
        // paper-main on a KL axis. One β grid cannot serve all three modes: their per-episode reward scales differ
        // about 1 : 4 : 20+ (bandit : segment : token), so each mode gets the β values that put its final KL over a
        // range the others also reach (chosen from one-seed pilot runs at β 0.05–10; docs/compare.md).
        "paper-main-frontier" => FrontierSeries(
            ("segment", Segment, [3, 1, 0.3]),
            ("token", Token, [10, 3, 1]),
            ("bandit", Bandit, [1, 0.3, 0.05])),
        "paper-normalizer" => new[] { "none", "global", "last", "location" }.Select(n => new CompareCell { Name = $"normalizer-{n}", Env = Segment, Normalizer = n }).ToList(),
        "paper-interpolation" => new[] { "none", "repeat", "even" }.Select(i => new CompareCell { Name = $"interpolation-{i}", Env = Segment, Interpolation = i }).ToList(),
        "paper-cross" =>
        [
            new() { Name = "bandit-as-segment", Env = Bandit, Mode = "segment" },
            new() { Name = "segment-as-bandit", Env = Segment, DenseAsBandit = true },
        ],
        "c-ent-sweep" => new[] { 1.0, 1.5, 2.0, 2.5, 3.0 }.Select(c => new CompareCell { Name = $"c-ent-{c:0.0}", Env = Segment, Mode = "segment", CEnt = c }).ToList(),
        // Algorithms × reward modes on fixed envs: each algorithm with its defaults and the same β (the KL is in the table).
        "algorithms" => new[] { ("bandit", Bandit), ("segment", Segment) }
            .SelectMany(env => Algorithms.Select(a => new CompareCell { Name = $"{a.Name}-{env.Item1}", Env = env.Item2, Agent = a.Agent })).ToList(),
        _ => throw new ArgumentException($"--preset must be one of {string.Join(", ", PresetNames)}; got '{name}'"),
    };

    private static List<CompareCell> FrontierSeries(params (string Series, string Env, double[] Betas)[] series) =>
        series.SelectMany(s => WithKlCoefs([new CompareCell { Name = s.Series, Env = s.Env }], s.Betas)).ToList();

    /// <summary>A grid file: {"cells":[{"name":…, "env":…, "agent":…, "mode":…, "c_ent":…, "normalizer":…, "interpolation":…,
    /// "dense_as_bandit":…, "length_norm":…, "missing_eos":…, "missing_eos_penalty":…}]}.</summary>
    public static List<CompareCell> Load(string path)
    {
        var json = JsonFile.ReadObject(path);
        var cells = json["cells"] as JsonArray ?? throw new InvalidDataException($"{path}: field 'cells' must be an array of cells");
        var result = new List<CompareCell>();
        for (int i = 0; i < cells.Count; i++)
        {
            var c = cells[i] as JsonObject ?? throw new InvalidDataException($"{path}: cells[{i}] is not an object");
            string Str(string f) => c[f]?.GetValue<string>() ?? throw new InvalidDataException($"{path}: cells[{i}].{f} is required");
            try
            {
                string[] known = ["name", "env", "agent", "series", "kl_coef", .. CompareCell.OptionKeys];
                if (c.Select(kv => kv.Key).FirstOrDefault(k => !known.Contains(k)) is { } unknown)
                    throw new ArgumentException($"unknown field '{unknown}' (known: {string.Join(", ", known)})");
                // Option values as the codec reads them: JSON strings, numbers or booleans, checked and made canonical.
                string? Opt(string key) => EnvOptionsJson.Text(key, c[key]) is { } v ? EnvOptionsCodec.Canonical(key, v) : null;
                var cell = new CompareCell
                {
                    Name = FolderName(Str("name")),
                    Env = Str("env"),
                    Agent = c["agent"]?.GetValue<string>() ?? "ppo",
                    Mode = Opt("mode"),
                    CEnt = Opt("c_ent") is { } cEnt ? double.Parse(cEnt, System.Globalization.CultureInfo.InvariantCulture) : null,
                    Normalizer = Opt("normalizer"),
                    Interpolation = Opt("interpolation"),
                    DenseAsBandit = Opt("dense_as_bandit") == "true",
                    LengthNorm = Opt("length_norm") == "true",
                    MissingEos = Opt("missing_eos"),
                    MissingEosPenalty = Opt("missing_eos_penalty") is { } penalty ? double.Parse(penalty, System.Globalization.CultureInfo.InvariantCulture) : null,
                    KlCoef = KlCoefField(c["kl_coef"]),
                    Series = c["series"] is null ? null : c["series"] is JsonValue sv && sv.TryGetValue<string>(out var series) && series.Length > 0
                        ? series : throw new ArgumentException($"series must be a non-empty string; got {c["series"]!.ToJsonString()}"),
                };
                cell.Apply(new EnvOptions());
                AlgorithmRegistry.Validate(cell.Agent);
                result.Add(cell);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
            {
                throw new InvalidDataException($"{path}: cells[{i}]: {e.Message}", e);
            }
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no cells");
        if (result.Select(c => c.Name).Distinct().Count() != result.Count) throw new InvalidDataException($"{path}: cell names must be unique");
        return result;
    }

    // A cell's name becomes its run folder under --out: one plain folder name, never a path out of it.
    private static string FolderName(string name) =>
        name.Length > 0 && name is not ("." or "..") && name.IndexOfAny(['/', '\\', '\0']) < 0 && name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0
            ? name : throw new ArgumentException($"name '{name}' must be a plain folder name (no '/', '\\', '.' or '..'): it names the cell's run folder under --out");

    /// <summary>
    /// Cells of one series must differ only in β (and their names): otherwise its curve would mix settings. Throws
    /// naming the series and what differs.
    /// </summary>
    public static void ValidateSeries(IReadOnlyList<CompareCell> cells)
    {
        foreach (var series in cells.GroupBy(c => c.SeriesName).Where(g => g.Count() > 1))
        {
            var first = series.First() with { Name = "", KlCoef = null };
            if (series.FirstOrDefault(c => c with { Name = "", KlCoef = null } != first) is { } other)
                throw new ArgumentException($"series '{series.Key}': cells '{series.First().Name}' and '{other.Name}' differ in more than kl_coef; a series is one setting over several β values");
            if (series.Select(c => c.KlCoef).Distinct().Count() != series.Count())
                throw new ArgumentException($"series '{series.Key}': two cells have the same kl_coef");
        }
    }

    /// <summary>kl_coef in a grid file: a JSON number ≥ 0 (null or absent: the trainer's default).</summary>
    private static double? KlCoefField(JsonNode? node)
    {
        if (node is null) return null;
        if (node is not JsonValue v || !v.TryGetValue<double>(out double beta))
            throw new ArgumentException($"kl_coef must be a number >= 0; got {node.ToJsonString()}");
        return CheckKlCoef(beta, "kl_coef");
    }

    private static double CheckKlCoef(double beta, string what) => beta >= 0 && double.IsFinite(beta)
        ? beta
        : throw new ArgumentException($"{what} must be finite numbers >= 0; got {beta.ToString("R", CultureInfo.InvariantCulture)}");

    /// <summary>
    /// The KL axis of any grid: every cell once per β, named "&lt;cell&gt;-beta-&lt;β&gt;" and grouped into the cell's
    /// series, so each cell becomes a gold-vs-KL frontier (<see cref="KlFrontier"/>).
    /// </summary>
    public static List<CompareCell> WithKlCoefs(IReadOnlyList<CompareCell> cells, IReadOnlyList<double> betas)
    {
        if (betas.Count == 0) throw new ArgumentException("--kl-coefs needs at least one value");
        foreach (var b in betas) CheckKlCoef(b, "--kl-coefs");
        if (betas.Distinct().Count() != betas.Count) throw new ArgumentException("--kl-coefs values must be distinct");
        if (cells.FirstOrDefault(c => c.KlCoef is not null) is { } set)
            throw new ArgumentException($"--kl-coefs would replace the β cell '{set.Name}' already sets (kl_coef {set.KlCoef}); leave one of them out");
        return cells.SelectMany(c => betas.Select(b => c with
        {
            Name = $"{c.Name}-beta-{b.ToString("R", CultureInfo.InvariantCulture)}",
            Series = c.SeriesName,
            KlCoef = b,
        })).ToList();
    }

    /// <summary>The cell as a grid file would write it (only the keys it sets), so a row's "config" can be run again.</summary>
    public static JsonObject Describe(CompareCell c)
    {
        var o = new JsonObject { ["name"] = c.Name, ["env"] = c.Env, ["agent"] = c.Agent };
        if (c.Series is { } series) o["series"] = series;
        if (c.KlCoef is { } beta) o["kl_coef"] = beta;
        if (c.Mode is { } mode) o["mode"] = mode;
        if (c.CEnt is { } cEnt) o["c_ent"] = cEnt;
        if (c.Normalizer is { } normalizer) o["normalizer"] = normalizer;
        if (c.Interpolation is { } interpolation) o["interpolation"] = interpolation;
        if (c.DenseAsBandit) o["dense_as_bandit"] = true;
        if (c.LengthNorm) o["length_norm"] = true;
        if (c.MissingEos is { } missingEos) o["missing_eos"] = missingEos;
        if (c.MissingEosPenalty is { } penalty) o["missing_eos_penalty"] = penalty;
        return o;
    }
}
