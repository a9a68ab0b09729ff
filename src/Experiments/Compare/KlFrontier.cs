using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;

namespace RlhfGym.Experiments.Compare;

/// <summary>
/// Gold against KL per series, and gold at matched KL. A reward mode that reaches a higher gold score at a higher KL
/// has not shown it is better: β brakes each mode's reward scale differently (bandit pays one number per episode, token
/// one per token). So each series (cells that differ only in β) is a curve of (KL, gold) points, and the series are
/// compared where they can be: at common KL values inside every series' measured range.
/// </summary>
/// <remarks>
/// Matched KL is computed per seed, never by extrapolation. For each series and seed the runs at the series' β values
/// give points (KL, gold); gold is interpolated linearly in log KL between the two nearest points. A KL value is
/// reported only when it lies inside the measured KL range of every seed of every series; the mean ± 95% CI (Student
/// t) is then over that series' seeds.
/// </remarks>
public static class KlFrontier
{
    /// <summary>How many matched KL values to report, spread evenly in log KL over the common range.</summary>
    public const int MatchedPoints = 5;

    private const string Gold = "gold_score_policy", Kl = "kl";

    /// <summary>
    /// The frontier of every series with at least two β values, or null when no series has a KL axis (then there is
    /// nothing to match and compare.json has no "frontier").
    /// </summary>
    public static JsonObject? Build(IReadOnlyList<CompareCell> cells, IReadOnlyDictionary<string, List<JsonObject>> perCell)
    {
        var series = cells.GroupBy(c => c.SeriesName).Where(g => g.Select(c => c.KlCoef).Distinct().Count() >= 2).ToList();
        if (series.Count == 0) return null;

        var seriesJson = new JsonArray();
        var curves = new Dictionary<string, Dictionary<long, List<(double Kl, double Gold)>>>();
        foreach (var s in series)
        {
            var points = new JsonArray();
            var bySeed = new Dictionary<long, List<(double Kl, double Gold)>>();
            foreach (var cell in s.OrderBy(c => c.KlCoef ?? double.NaN))
            {
                var runs = perCell[cell.Name].Where(r => Finite(r[Kl]) is > 0 && Finite(r[Gold]) is not null).ToList();
                foreach (var r in runs)
                {
                    long seed = r["seed"]!.GetValue<long>();
                    if (!bySeed.TryGetValue(seed, out var list)) bySeed[seed] = list = [];
                    list.Add((Finite(r[Kl])!.Value, Finite(r[Gold])!.Value));
                }
                points.Add(new JsonObject
                {
                    ["cell"] = cell.Name,
                    ["kl_coef"] = cell.KlCoef,
                    ["seeds"] = runs.Count,
                    ["kl"] = MeanCi(runs.Select(r => Finite(r[Kl])!.Value).ToList(), significant: true),
                    ["gold"] = MeanCi(runs.Select(r => Finite(r[Gold])!.Value).ToList()),
                });
            }
            // A seed with fewer than two points has no curve to interpolate on.
            curves[s.Key] = bySeed.Where(kv => kv.Value.Count >= 2).ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(p => p.Kl).ToList());
            seriesJson.Add(new JsonObject { ["name"] = s.Key, ["points"] = points });
        }
        return new JsonObject { ["series"] = seriesJson, ["matched_kl"] = Matched(curves) };
    }

    private static JsonObject Matched(Dictionary<string, Dictionary<long, List<(double Kl, double Gold)>>> curves)
    {
        if (curves.FirstOrDefault(c => c.Value.Count == 0) is { Key: { } empty })
            return NoMatch($"series '{empty}' has no seed with runs at two or more β values");
        // The common range: inside every seed's measured range of every series.
        double lo = curves.Values.SelectMany(s => s.Values).Max(c => c[0].Kl);
        double hi = curves.Values.SelectMany(s => s.Values).Min(c => c[^1].Kl);
        if (!(lo < hi))
        {
            string ranges = string.Join("; ", curves.Select(c => $"{c.Key} [{F(c.Value.Values.Max(v => v[0].Kl))}, {F(c.Value.Values.Min(v => v[^1].Kl))}]"));
            return NoMatch($"the series' KL ranges do not overlap (inside every seed: {ranges}); add β values that close the gap");
        }
        // The ends are the measured ends themselves: exp(log x) can land an ulp outside a curve's range.
        var kls = Enumerable.Range(0, MatchedPoints)
            .Select(i => i == 0 ? lo : i == MatchedPoints - 1 ? hi : Math.Exp(Math.Log(lo) + (Math.Log(hi) - Math.Log(lo)) * i / (MatchedPoints - 1))).ToArray();
        var bySeries = new JsonObject();
        foreach (var (name, seeds) in curves)
        {
            var rows = new JsonArray();
            foreach (double kl in kls)
            {
                var golds = seeds.Values.Select(curve => Interpolate(curve, kl)).ToList();
                rows.Add(new JsonObject { ["kl"] = SignificantDigits.Round(kl), ["seeds"] = golds.Count, ["gold"] = MeanCi(golds) });
            }
            bySeries[name] = rows;
        }
        return new JsonObject
        {
            ["range"] = new JsonArray(SignificantDigits.Round(lo), SignificantDigits.Round(hi)),
            ["kl"] = new JsonArray(kls.Select(k => (JsonNode)SignificantDigits.Round(k)).ToArray()),
            ["series"] = bySeries,
            ["reason"] = null,
        };
    }

    private static JsonObject NoMatch(string reason) => new() { ["range"] = null, ["kl"] = new JsonArray(), ["series"] = new JsonObject(), ["reason"] = reason };

    /// <summary>Gold at <paramref name="kl"/> on one seed's curve (sorted by KL, kl inside its range): linear in log KL.</summary>
    public static double Interpolate(IReadOnlyList<(double Kl, double Gold)> curve, double kl)
    {
        if (kl < curve[0].Kl || kl > curve[^1].Kl) throw new ArgumentOutOfRangeException(nameof(kl), kl, "outside the curve's KL range");
        for (int i = 1; i < curve.Count; i++)
        {
            var (a, b) = (curve[i - 1], curve[i]);
            if (kl > b.Kl) continue;
            if (b.Kl == a.Kl) return (a.Gold + b.Gold) / 2; // two β values that ended at the same KL
            double t = (Math.Log(kl) - Math.Log(a.Kl)) / (Math.Log(b.Kl) - Math.Log(a.Kl));
            return a.Gold + t * (b.Gold - a.Gold);
        }
        return curve[^1].Gold;
    }

    private static double? Finite(JsonNode? node) => node is null ? null : JsonNumbers.AsDouble(node) is var d && double.IsFinite(d) ? d : null;

    /// <summary>Mean ± 95% CI, rounded to 6 decimals, or (KL, which spans 1e-4 to 1e2) to 6 significant digits.</summary>
    private static JsonObject MeanCi(IReadOnlyList<double> values, bool significant = false) => values.Count == 0
        ? new JsonObject { ["mean"] = null, ["ci95"] = null }
        : CompareRunner.MeanCiJson(values, significant ? v => SignificantDigits.Round(v, 6) : v => Math.Round(v, 6));

    private static string F(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>The frontier's two markdown tables: every point, then gold at matched KL (or why there is none).</summary>
    public static string Markdown(JsonObject frontier)
    {
        var sb = new StringBuilder("\n### Gold against KL (each series over its β values)\n\n| series | β | seeds | KL | gold |\n|---|---|---|---|---|\n");
        foreach (var s in frontier["series"]!.AsArray())
            foreach (var p in s!["points"]!.AsArray())
                sb.AppendLine($"| {s["name"]} | {p!["kl_coef"]} | {p["seeds"]} | {CompareRunner.MeanCiText(p["kl"])} | {CompareRunner.MeanCiText(p["gold"])} |");
        var matched = frontier["matched_kl"]!;
        if (matched["reason"] is { } reason)
            return sb.Append($"\nNo gold at matched KL: {reason}.\n").ToString();
        var names = matched["series"]!.AsObject().Select(kv => kv.Key).ToList();
        sb.Append($"\n### Gold at matched KL (interpolated per seed in log KL; mean ± 95% CI over seeds)\n\n| KL | {string.Join(" | ", names)} |\n|---|{string.Concat(names.Select(_ => "---|"))}\n");
        var kls = matched["kl"]!.AsArray();
        for (int i = 0; i < kls.Count; i++)
            sb.AppendLine($"| {F((double)kls[i]!)} | {string.Join(" | ", names.Select(n => CompareRunner.MeanCiText(matched["series"]![n]![i]!["gold"])))} |");
        return sb.ToString();
    }

    /// <summary>Gold against KL (log scale), one line per series with error bars both ways; the matched range shaded.</summary>
    public static void Plot(string path, JsonObject frontier)
    {
        var plot = new ScottPlot.Plot();
        var allKl = new List<double>();
        foreach (var s in frontier["series"]!.AsArray())
        {
            // Only points a log axis can show.
            var points = s!["points"]!.AsArray().Where(p => p!["kl"]!["mean"] is { } k && (double)k > 0 && p["gold"]!["mean"] is not null).ToList();
            double[] kl = points.Select(p => (double)p!["kl"]!["mean"]!).ToArray();
            double[] x = kl.Select(Math.Log10).ToArray(), y = points.Select(p => (double)p!["gold"]!["mean"]!).ToArray();
            allKl.AddRange(kl);
            var line = plot.Add.Scatter(x, y);
            line.LegendText = (string)s["name"]!;
            // The KL error bar in log space: log10(mean ± ci), clamped above zero.
            double Ci(JsonNode p, string f) => p[f]!["ci95"] is { } c ? (double)c : 0;
            var err = new ScottPlot.Plottables.ErrorBar(x, y,
                xErrorsPositive: points.Select((p, i) => Math.Log10(kl[i] + Ci(p!, "kl")) - x[i]).ToArray(),
                xErrorsNegative: points.Select((p, i) => x[i] - Math.Log10(Math.Max(kl[i] - Ci(p!, "kl"), kl[i] / 100))).ToArray(),
                yErrorsPositive: points.Select(p => Ci(p!, "gold")).ToArray(),
                yErrorsNegative: points.Select(p => Ci(p!, "gold")).ToArray())
            { Color = line.Color };
            plot.Add.Plottable(err);
        }
        if (frontier["matched_kl"]!["range"] is JsonArray range && (double)range[0]! > 0)
        {
            var span = plot.Add.HorizontalSpan(Math.Log10((double)range[0]!), Math.Log10((double)range[1]!));
            span.LegendText = "matched KL range";
            span.FillStyle.Color = ScottPlot.Colors.Gray.WithAlpha(0.15);
        }
        if (allKl.Count > 0)
        {
            double lo = Math.Floor(Math.Log10(allKl.Min())), hi = Math.Ceiling(Math.Log10(allKl.Max()));
            var ticks = new List<double>();
            for (double e = lo; e <= hi; e++) ticks.AddRange([e, e + Math.Log10(3)]);
            plot.Axes.Bottom.SetTicks(ticks.ToArray(), ticks.Select(t => F(Math.Pow(10, t))).ToArray());
        }
        plot.Title("Gold against KL per series (mean ± 95% CI over seeds)");
        plot.XLabel("KL per episode (log scale)");
        plot.YLabel("gold score");
        plot.ShowLegend();
        PlotFile.SavePng(plot, path, 800, 500);
    }
}
