using System.Text.Json.Nodes;
using RlhfGym.Experiments.Compare;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

public class KlFrontierTests
{
    private static JsonObject Run(long seed, double kl, double gold) => new() { ["seed"] = seed, ["kl"] = kl, ["gold_score_policy"] = gold };

    private static CompareCell Cell(string series, double beta) => new() { Name = $"{series}-beta-{beta}", Env = "e", Series = series, KlCoef = beta };

    [Fact]
    public void Interpolation_is_linear_in_log_KL_and_refuses_to_extrapolate()
    {
        var curve = new List<(double, double)> { (1, 0), (10, 1), (100, 3) };
        Assert.Equal(0.5, KlFrontier.Interpolate(curve, Math.Sqrt(10)), 12);
        Assert.Equal(2.0, KlFrontier.Interpolate(curve, Math.Sqrt(1000)), 12);
        Assert.Equal(3.0, KlFrontier.Interpolate(curve, 100), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => KlFrontier.Interpolate(curve, 0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => KlFrontier.Interpolate(curve, 101));
    }

    [Fact]
    public void Gold_at_matched_KL_is_read_per_seed_inside_every_series_range()
    {
        // Series a: gold = log10(KL) on both seeds, over KL 1..100. Series b: gold = 2 + seed offset, over KL 2..50.
        var cells = new List<CompareCell> { Cell("a", 1), Cell("a", 0.1), Cell("a", 0.01), Cell("b", 3), Cell("b", 0.3), Cell("solo", 0.3) };
        var perCell = new Dictionary<string, List<JsonObject>>
        {
            ["a-beta-1"] = [Run(1, 1, 0), Run(2, 1, 0)],
            ["a-beta-0.1"] = [Run(1, 10, 1), Run(2, 10, 1)],
            ["a-beta-0.01"] = [Run(1, 100, 2), Run(2, 100, 2)],
            ["b-beta-3"] = [Run(1, 2, 2), Run(2, 4, 3)],
            ["b-beta-0.3"] = [Run(1, 50, 2), Run(2, 25, 3)],
            ["solo-beta-0.3"] = [Run(1, 5, 9)],
        };
        var f = KlFrontier.Build(cells, perCell)!;
        // "solo" has one β: a point, not a curve.
        Assert.Equal(["a", "b"], f["series"]!.AsArray().Select(s => (string)s!["name"]!).ToArray());
        var m = f["matched_kl"]!;
        Assert.Null(m["reason"]);
        // The common range is inside every seed's range: max of the lows (4, seed 2 of b), min of the highs (25).
        Assert.Equal(4, (double)m["range"]![0]!);
        Assert.Equal(25, (double)m["range"]![1]!);
        var kls = m["kl"]!.AsArray().Select(k => (double)k!).ToArray();
        Assert.Equal(KlFrontier.MatchedPoints, kls.Length);
        for (int i = 0; i < kls.Length; i++)
        {
            var a = m["series"]!["a"]![i]!["gold"]!;
            Assert.Equal(Math.Log10(kls[i]), (double)a["mean"]!, 3);
            Assert.Equal(0, (double)a["ci95"]!, 6); // both seeds agree
            var b = m["series"]!["b"]![i]!["gold"]!;
            Assert.Equal(2.5, (double)b["mean"]!, 6);
            Assert.Equal(CompareRunner.TQuantile975(1) * Math.Sqrt(0.5) / Math.Sqrt(2), (double)b["ci95"]!, 3); // sd of {2, 3}
        }
        Assert.Contains("Gold at matched KL", KlFrontier.Markdown(f));
    }

    [Fact]
    public void The_matched_range_ends_on_measured_values_that_do_not_round_trip_through_log()
    {
        Assert.NotEqual(3.0, Math.Exp(Math.Log(3.0))); // the case that once threw
        var cells = new List<CompareCell> { Cell("a", 1), Cell("a", 0.1), Cell("b", 1), Cell("b", 0.1) };
        var perCell = new Dictionary<string, List<JsonObject>>
        {
            ["a-beta-1"] = [Run(1, 3, 1)],
            ["a-beta-0.1"] = [Run(1, 30, 2)],
            ["b-beta-1"] = [Run(1, 1, 0)],
            ["b-beta-0.1"] = [Run(1, 7, 1)],
        };
        var m = KlFrontier.Build(cells, perCell)!["matched_kl"]!;
        Assert.Null(m["reason"]);
        Assert.Equal(3, (double)m["kl"]![0]!);
        Assert.Equal(7, (double)m["kl"]![KlFrontier.MatchedPoints - 1]!);
        Assert.Equal(1, (double)m["series"]!["a"]![0]!["gold"]!["mean"]!, 12);
    }

    [Theory]
    [InlineData(85.55831, 85.56)]
    [InlineData(0.000123456, 0.0001235)]
    [InlineData(1.27426, 1.274)]
    [InlineData(0, 0)]
    public void KL_figures_keep_four_significant_digits(double value, double expected) =>
        Assert.Equal(expected, RlhfGym.Env.Common.SignificantDigits.Round(value), 12);

    [Theory]
    [InlineData(1.0445, 0.2204, "1.045 ± 0.220")] // a tie at the 4th decimal rounds as the 4-significant-digit KL does
    [InlineData(1.0444, 0.0005, "1.044 ± 0.001")]
    [InlineData(-4.4625, 3.1875, "-4.463 ± 3.188")]
    public void Table_cells_round_half_away_from_zero_in_decimal(double mean, double ci, string expected) =>
        Assert.Equal(expected, CompareRunner.MeanCiText(new System.Text.Json.Nodes.JsonObject { ["mean"] = mean, ["ci95"] = ci }));

    [Fact]
    public void A_series_must_be_one_setting_over_distinct_betas()
    {
        var mixed = new List<CompareCell> { Cell("a", 1), Cell("a", 0.1) with { Normalizer = "global" } };
        Assert.Contains("differ in more than kl_coef", Assert.Throws<ArgumentException>(() => CompareGrid.ValidateSeries(mixed)).Message);
        var repeated = new List<CompareCell> { Cell("a", 1), Cell("a", 1) with { Name = "a-again" } };
        Assert.Contains("same kl_coef", Assert.Throws<ArgumentException>(() => CompareGrid.ValidateSeries(repeated)).Message);
        Assert.Contains("already sets", Assert.Throws<ArgumentException>(() => CompareGrid.WithKlCoefs(CompareGrid.Preset("paper-main-frontier"), [0.1])).Message);
    }

    [Fact]
    public void Ranges_that_do_not_overlap_say_so_instead_of_extrapolating()
    {
        var cells = new List<CompareCell> { Cell("low", 1), Cell("low", 0.5), Cell("high", 1), Cell("high", 0.5) };
        var perCell = new Dictionary<string, List<JsonObject>>
        {
            ["low-beta-1"] = [Run(1, 0.5, 1)],
            ["low-beta-0.5"] = [Run(1, 1, 2)],
            ["high-beta-1"] = [Run(1, 40, 1)],
            ["high-beta-0.5"] = [Run(1, 80, 0)],
        };
        var m = KlFrontier.Build(cells, perCell)!["matched_kl"]!;
        Assert.Contains("do not overlap", (string)m["reason"]!);
        Assert.Empty(m["kl"]!.AsArray());
        Assert.Null(KlFrontier.Build([Cell("a", 1), Cell("b", 1)], new Dictionary<string, List<JsonObject>> { ["a-beta-1"] = [], ["b-beta-1"] = [] }));
    }

    [Fact]
    public void Compare_with_a_KL_axis_writes_the_frontier_table_plot_and_json()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), grid = dir.File("grid.json"), outDir = Path.Combine(dir.Path, "out");
        RandomBundle.Write(bundle, maxNewTokens: 6, seed: 4);
        File.WriteAllText(grid, $$"""{"cells":[{"name":"seg","env":"{{bundle}}"},{"name":"bandit","env":"{{bundle}}","mode":"bandit"}]}""");
        var r = CliRunner.Run("compare", "--config", grid, "--kl-coefs", "0.01,1", "--seeds", "2", "--iterations", "2", "--out", outDir, "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal(8, (int)json["runs"]!);
        Assert.Equal(["seg-beta-0.01", "seg-beta-1", "bandit-beta-0.01", "bandit-beta-1"], json["table"]!.AsArray().Select(c => (string)c!["cell"]!).ToArray());
        var series = json["frontier"]!["series"]!.AsArray();
        Assert.Equal(["seg", "bandit"], series.Select(s => (string)s!["name"]!).ToArray());
        // The first iteration samples from the reference itself (KL 0); the second has a KL to put on the axis.
        Assert.Equal(2, (int)series[0]!["points"]![0]!["seeds"]!);
        Assert.NotNull(json["frontier"]!["matched_kl"]);
        Assert.True(File.Exists(Path.Combine(outDir, "compare_frontier.png")));
        Assert.Contains("Gold against KL", File.ReadAllText(Path.Combine(outDir, "compare.md")));
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compare.json")))!["frontier"]);

        foreach (var (value, expect) in new[] { ("0.1,x", "'x'"), ("-1", ">= 0"), ("0.1,0.1", "distinct") })
        {
            var bad = CliRunner.Run("compare", "--config", grid, "--kl-coefs", value, "--out", Path.Combine(dir.Path, "bad"), "--json");
            Assert.Contains(expect, (string?)bad.LastJson()["error"]);
        }
        File.WriteAllText(grid, $$"""{"cells":[{"name":"x","env":"{{bundle}}","kl_coef":"big"}]}""");
        var badField = CliRunner.Run("compare", "--config", grid, "--json");
        Assert.Contains("cells[0]: kl_coef must be a number", (string?)badField.LastJson()["error"]);
        File.WriteAllText(grid, $$"""{"cells":[{"name":"x","env":"{{bundle}}","series":7}]}""");
        Assert.Contains("cells[0]: series must be a non-empty string", (string?)CliRunner.Run("compare", "--config", grid, "--json").LastJson()["error"]);

        // The same cell name at another β must not reuse the finished runs.
        File.WriteAllText(grid, $$"""{"cells":[{"name":"seg-beta-0.01","env":"{{bundle}}","kl_coef":0.5}]}""");
        var stale = CliRunner.Run("compare", "--config", grid, "--seeds", "1", "--iterations", "2", "--out", outDir, "--json");
        Assert.Contains("holds a run at β 0.01; cell 'seg-beta-0.01' asks for β 0.5", (string?)stale.LastJson()["error"]);
    }
}
