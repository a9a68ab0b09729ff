using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

public class CompareVerbTests
{
    [Fact]
    public void A_restarted_compare_skips_finished_runs_and_reports_intervals()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), grid = dir.File("grid.json"), outDir = Path.Combine(dir.Path, "out");
        RandomBundle.Write(bundle, maxNewTokens: 6, seed: 4);
        File.WriteAllText(grid, $$"""
            {"cells":[{"name":"segment","env":"{{bundle}}"},{"name":"none-norm","env":"{{bundle}}","normalizer":"none","agent":"reinforce"}]}
            """);
        var first = CliRunner.Run("compare", "--config", grid, "--seeds", "2", "--iterations", "1", "--out", outDir, "--json");
        Assert.True(first.ExitCode == 0, first.StdErr);
        Assert.Equal(4, (int)first.LastJson()["runs"]!);
        var table = first.LastJson()["table"]!.AsArray();
        Assert.Equal(2, table.Count);
        Assert.NotNull(table[0]!["gold_score_policy"]!["ci95"]);
        Assert.True(File.Exists(Path.Combine(outDir, "compare.md")));
        Assert.True(File.Exists(Path.Combine(outDir, "compare_gold.png")));

        // As if killed before the last run finished: it has no summary.
        File.Delete(Path.Combine(outDir, "none-norm", "seed-2", "summary.json"));
        var again = CliRunner.Run("compare", "--config", grid, "--seeds", "2", "--iterations", "1", "--out", outDir, "--json");
        Assert.True(again.ExitCode == 0, again.StdErr);
        Assert.Equal(1, (int)again.LastJson()["runs"]!);
        Assert.Equal(3, (int)again.LastJson()["skipped"]!);

        File.WriteAllText(grid, """{"cells":[{"name":"x","env":"e","normalizer":"median"}]}""");
        var bad = CliRunner.Run("compare", "--config", grid, "--json");
        Assert.Contains("cells[0]", (string?)bad.LastJson()["error"]);
        var badPreset = CliRunner.Run("compare", "--preset", "paper-everything", "--json");
        Assert.Contains("paper-main", (string?)badPreset.LastJson()["error"]);

        // --world moves PhraseWorld v0 cells into a named world with dials, and nothing else.
        var badWorld = CliRunner.Run("compare", "--preset", "paper-main", "--world", "Noisy", "--out", Path.Combine(dir.Path, "w1"), "--json");
        Assert.Contains("--world must be one of LocationTrend, BoundaryNoise, VerbosityBias", (string?)badWorld.LastJson()["error"]);
        File.WriteAllText(grid, $$"""{"cells":[{"name":"x","env":"{{bundle}}"}]}""");
        var notPhraseWorld = CliRunner.Run("compare", "--config", grid, "--world", "LocationTrend", "--out", Path.Combine(dir.Path, "w2"), "--json");
        Assert.Contains("is not one", (string?)notPhraseWorld.LastJson()["error"]);
    }
}
