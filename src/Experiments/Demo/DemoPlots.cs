using System.Text.Json.Nodes;
using RlhfGym.Env.Normalization;
using RlhfGym.Experiments;

namespace RlhfGym.Experiments.Demo;

/// <summary>The demo's PNG plots (ScottPlot).</summary>
public static class DemoPlots
{
    /// <summary>One line per mode of a metric over iterations (points where the metric was recorded).</summary>
    public static void MetricOverIterations(string path, string metric, string title, string yLabel,
        IReadOnlyDictionary<string, List<JsonObject>> metricsByMode, double? baseline = null, string? baselineLabel = null)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (mode, rows) in metricsByMode)
        {
            var points = rows.Where(r => r[metric] is not null).ToList();
            if (points.Count == 0) continue;
            var line = plot.Add.Scatter(points.Select(r => JsonNumbers.AsDouble(r["iteration"])).ToArray(), points.Select(r => JsonNumbers.AsDouble(r[metric])).ToArray());
            line.LegendText = mode;
        }
        if (baseline is { } b)
        {
            var h = plot.Add.HorizontalLine(b);
            h.LegendText = baselineLabel ?? "baseline";
            h.LinePattern = ScottPlot.LinePattern.Dashed;
        }
        plot.Title(title);
        plot.XLabel("iteration");
        plot.YLabel(yLabel);
        plot.ShowLegend();
        PlotFile.SavePng(plot, path, 800, 450);
    }

    /// <summary>Raw segment rewards against their location p = k/K, with the fitted μ(p) ± σ(p).</summary>
    public static void RewardVsLocation(string path, IReadOnlyList<(double P, double Reward)> points, RewardNormalizer normalizer)
    {
        var plot = new ScottPlot.Plot();
        var scatter = plot.Add.ScatterPoints(points.Select(p => p.P).ToArray(), points.Select(p => p.Reward).ToArray());
        scatter.LegendText = "raw segment reward r_k";
        scatter.MarkerSize = 3;
        var xs = Enumerable.Range(1, 100).Select(i => i / 100.0).ToArray();
        var mean = plot.Add.Scatter(xs, xs.Select(normalizer.MeanAt).ToArray());
        mean.LegendText = "μ(p)";
        mean.MarkerSize = 0;
        mean.LineWidth = 2;
        var upper = plot.Add.Scatter(xs, xs.Select(p => normalizer.MeanAt(p) + normalizer.StdAt(p)).ToArray());
        upper.LegendText = "μ(p) ± σ(p)";
        upper.MarkerSize = 0;
        upper.LinePattern = ScottPlot.LinePattern.Dashed;
        var lower = plot.Add.Scatter(xs, xs.Select(p => normalizer.MeanAt(p) - normalizer.StdAt(p)).ToArray());
        lower.MarkerSize = 0;
        lower.LinePattern = ScottPlot.LinePattern.Dashed;
        lower.Color = upper.Color;
        plot.Title("Segment reward vs location, with the location normalizer's fit");
        plot.XLabel("p = k / K (segment index over segments in the response)");
        plot.YLabel("raw segment reward");
        plot.ShowLegend();
        PlotFile.SavePng(plot, path, 800, 450);
    }
}
