using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Experiments;
using RlhfGym.Models.Checkpoints;
using static TorchSharp.torch;

namespace RlhfGym.Experiments.Compare;

/// <summary>
/// Runs every cell × seed of a grid, each into OUT/&lt;cell&gt;/seed-&lt;s&gt; (or, with a <see cref="RunStore"/>, into
/// the store under the setting it trains, shared with other grids). A finished run (summary.json present) is skipped
/// and a half-finished one resumes from its checkpoint, so a compare killed half-way and restarted picks up where it
/// stopped. Then: mean ± 95% CI (t) per cell, a markdown table and a plot.
/// </summary>
public sealed class CompareRunner(Device device, Action<string> progress)
{
    public static readonly string[] Figures = ["gold_score_policy", "win_rate_vs_sft", "lc_win_rate", "eval_length", "kl"];

    public JsonObject Run(string outDir, IReadOnlyList<CompareCell> cells, int seeds, int iterations, RunStore? store = null)
    {
        CompareGrid.ValidateSeries(cells);
        Directory.CreateDirectory(outDir);
        int skipped = 0, ran = 0;
        var perCell = new Dictionary<string, List<JsonObject>>();
        foreach (var cell in cells)
        {
            perCell[cell.Name] = [];
            for (int seed = 1; seed <= seeds; seed++)
            {
                string runDir = RunDirectory(outDir, cell, iterations, seed, store);
                string summaryPath = Path.Combine(runDir, Trainer.SummaryFile);
                if (File.Exists(summaryPath))
                {
                    var summary = JsonFile.ReadObject(summaryPath);
                    // A finished run is reused only for the β it ran at (an edited grid must not put stale points on a frontier).
                    double beta = cell.KlCoef ?? new TrainerOptions().KlCoef;
                    if (summary["kl_coef"] is { } ran0 && Math.Abs(JsonNumbers.AsDouble(ran0) - beta) > 1e-12)
                        throw new InvalidOperationException($"{runDir} holds a run at β {JsonNumbers.AsDouble(ran0)}; cell '{cell.Name}' asks for β {beta}: choose another --out or remove that run");
                    perCell[cell.Name].Add(summary);
                    skipped++;
                    continue;
                }
                progress($"compare: {cell.Name}, seed {seed}");
                store?.Record(cell, iterations);
                using var env = EnvRegistry.Make(cell.Env, 64, cell.Apply, device: device, progress: progress);
                var trainer = new Trainer(env, Path.Combine(env.Bundle.Directory, EnvBundle.ReferenceDir),
                    JudgePolicyEvaluator.ForBundle(env.Bundle, env.Spec.MaxNewTokens, device), device);
                var options = new TrainerOptions { Algorithm = cell.Agent, Iterations = iterations, Seed = seed, EvalEvery = iterations };
                if (cell.KlCoef is { } cellBeta) options = options with { KlCoef = cellBeta };
                perCell[cell.Name].Add(trainer.Run(runDir, options, resume: RunCheckpoint.Find(runDir) is not null).Figures);
                ran++;
            }
        }
        var table = new JsonArray();
        foreach (var cell in cells)
        {
            var row = new JsonObject { ["cell"] = cell.Name, ["seeds"] = perCell[cell.Name].Count, ["config"] = CompareGrid.Describe(cell) };
            // A figure a run does not have (an algorithm without a KL figure, an env without a judge) is left out of
            // the mean; a cell where no run has it reports null.
            // An LC from a summary without "lc_glm_failed" was computed by the earlier free-intercept fit: not used.
            List<double> Present(string figure) => perCell[cell.Name]
                .Where(s => s[figure] is not null && (figure != "lc_win_rate" || s["lc_glm_failed"] is not null))
                .Select(s => JsonNumbers.AsDouble(s[figure])).ToList();
            foreach (var figure in Figures)
            {
                var values = Present(figure);
                if (values.Count == 0)
                {
                    row[figure] = null;
                    continue;
                }
                row[figure] = MeanCiJson(values, v => Math.Round(v, 6));
            }
            // Seeds whose length-controlled GLM failed (AlpacaEval's bound) have no LC; the table says how many.
            row["lc_glm_failures"] = perCell[cell.Name].Count(s => s["lc_glm_failed"]?.GetValue<bool>() == true);
            var sft = Present("gold_score_sft");
            row["gold_score_sft"] = sft.Count == 0 ? null : Math.Round(sft.Average(), 6);
            table.Add(row);
        }
        // Cells that differ only in β form gold-vs-KL curves, compared at matched KL (KlFrontier).
        var frontier = KlFrontier.Build(cells, perCell);
        AtomicFile.WriteAllText(Path.Combine(outDir, "compare.md"), Markdown(table) + (frontier is null ? "" : KlFrontier.Markdown(frontier)));
        AtomicFile.WriteAllText(Path.Combine(outDir, "compare.json"), new JsonObject { ["table"] = table.DeepClone(), ["frontier"] = frontier?.DeepClone() }.ToJsonString());
        Plot(Path.Combine(outDir, "compare_gold.png"), table);
        if (frontier is not null) KlFrontier.Plot(Path.Combine(outDir, "compare_frontier.png"), frontier);
        return new JsonObject { ["out"] = Path.GetFullPath(outDir), ["runs"] = ran, ["skipped"] = skipped, ["table"] = table, ["frontier"] = frontier };
    }

    /// <summary>Where a cell's seed runs: in the store when there is one, else under the grid's own output directory.</summary>
    public static string RunDirectory(string outDir, CompareCell cell, int iterations, int seed, RunStore? store) =>
        store?.RunDirectory(cell, iterations, seed) ?? Path.Combine(outDir, cell.Name, $"seed-{seed}");

    /// <summary>How many of a grid's runs are finished, per cell, without training anything (results --plan).</summary>
    public static JsonArray Plan(string outDir, IReadOnlyList<CompareCell> cells, int seeds, int iterations, RunStore? store) =>
        new(cells.Select(cell =>
        {
            var dirs = Enumerable.Range(1, seeds).Select(seed => RunDirectory(outDir, cell, iterations, seed, store)).ToList();
            return (JsonNode)new JsonObject
            {
                ["cell"] = cell.Name,
                ["finished"] = dirs.Count(d => File.Exists(Path.Combine(d, Trainer.SummaryFile))),
                ["seeds"] = seeds,
                ["runs"] = Path.GetFullPath(Path.GetDirectoryName(dirs[0])!),
                ["setting"] = store is null ? null : RunStore.Setting(cell, iterations),
            };
        }).ToArray());

    /// <summary>
    /// Mean and half-width of the 95% confidence interval over seeds: t(0.975, n − 1) · sd / √n, with the exact
    /// Student-t quantile for any n ≥ 2 (MathNet.Numerics); NaN half-width for a single value.
    /// </summary>
    public static (double Mean, double HalfWidth) MeanCi95(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        if (values.Count < 2) return (mean, double.NaN);
        double sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        return (mean, TQuantile975(values.Count - 1) * sd / Math.Sqrt(values.Count));
    }

    /// <summary>The 0.975 quantile of Student's t with df degrees of freedom (df 1: 12.706, df 10: 2.228, df 30: 2.042).</summary>
    public static double TQuantile975(int df) => df >= 1
        ? MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, df, 0.975)
        : throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be >= 1");

    /// <summary>A figure over seeds as compare.json writes it: {"mean", "ci95"}, ci95 null for a single value.</summary>
    internal static JsonObject MeanCiJson(IReadOnlyList<double> values, Func<double, double> round)
    {
        var (mean, half) = MeanCi95(values);
        return new JsonObject { ["mean"] = round(mean), ["ci95"] = double.IsFinite(half) ? round(half) : null };
    }

    /// <summary>A {"mean", "ci95"} figure as a table cell: "1.234 ± 0.056", "1.234", or "–" when there is none.</summary>
    public static string MeanCiText(JsonNode? f) => f?["mean"] is null ? "–"
        : f["ci95"] is null ? F3((double)f["mean"]!)
        : $"{F3((double)f["mean"]!)} ± {F3((double)f["ci95"]!)}";

    /// <summary>
    /// Three decimals, half away from zero in decimal (1.0445 prints 1.045, where a double's F3 would see 1.04449999…).
    /// JSON figures keep 6 decimals (KL 6 significant digits), so a table cell is rounded once from nearly the exact value
    /// and the per-cell and frontier tables print the same digits for the same figure.
    /// </summary>
    private static string F3(double v) => Math.Round((decimal)v, 3, MidpointRounding.AwayFromZero).ToString("F3", CultureInfo.InvariantCulture);

    private static string Markdown(JsonArray table)
    {
        var sb = new StringBuilder("| cell | seeds | gold | win rate vs SFT | LC win rate | length | KL |\n|---|---|---|---|---|---|---|\n");
        bool anyFailed = false;
        foreach (var row in table)
        {
            int failed = (int)row!["lc_glm_failures"]!;
            anyFailed |= failed > 0;
            string lc = MeanCiText(row["lc_win_rate"]) + (failed > 0 ? $" † {failed}/{row["seeds"]}" : "");
            sb.AppendLine($"| {row["cell"]} | {row["seeds"]} | {MeanCiText(row["gold_score_policy"])} | {MeanCiText(row["win_rate_vs_sft"])} | {lc} | {MeanCiText(row["eval_length"])} | {MeanCiText(row["kl"])} |");
        }
        if (anyFailed)
            sb.AppendLine("\n† k/n: the length-controlled GLM failed on k of n seeds (LC beyond AlpacaEval's bound: above max(WR + (1 − WR)/4, "
                + "WR + 0.10) or below min(WR − WR/4, WR − 0.10)); those seeds have no LC and are left out of its mean (– when all failed).");
        return sb.ToString();
    }

    private static void Plot(string path, JsonArray table)
    {
        var plot = new ScottPlot.Plot();
        var names = table.Select(r => (string)r!["cell"]!).ToArray();
        for (int i = 0; i < names.Length; i++)
        {
            if (table[i]!["gold_score_policy"] is not { } f) continue; // no judge: no bar
            var bar = plot.Add.Bar(i, (double)f["mean"]!);
            bar.Bars[0].Error = f["ci95"] is null ? 0 : (double)f["ci95"]!;
        }
        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, names.Length).Select(i => (double)i).ToArray(), names);
        plot.Title("Held-out gold score per cell (mean ± 95% CI)");
        plot.YLabel("gold score");
        PlotFile.SavePng(plot, path, 200 + 110 * names.Length, 450);
    }
}
