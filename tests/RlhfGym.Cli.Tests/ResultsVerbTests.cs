using RlhfGym.Experiments.Compare;
using RlhfGym.Experiments.Results;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

public class ResultsVerbTests
{
    [Fact]
    public void Results_fills_each_region_from_its_command_shares_runs_between_regions_and_keeps_the_prose()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), runs = Path.Combine(dir.Path, "runs"), page = dir.File("results.md");
        RandomBundle.Write(bundle, maxNewTokens: 6, seed: 4);
        string plain = dir.File("plain.json"), frontier = dir.File("frontier.json");
        File.WriteAllText(plain, $$"""{"cells":[{"name":"a","env":"{{bundle}}"}]}""");
        // Its β 0.3 point is the same setting as plain.json's cell (β defaults to 0.3): the store trains it once.
        File.WriteAllText(frontier, $$"""
            {"cells":[{"name":"x","env":"{{bundle}}","series":"s","kl_coef":0.3},{"name":"y","env":"{{bundle}}","series":"s","kl_coef":1}]}
            """);
        string prose = "# Results\n\nProse before.\n\n<!-- results: rlhfgym compare --config " + plain + " --seeds 2 --iterations 1 --json -->\nold table\n<!-- /results -->\n\n"
            + "Prose between.\n\n<!-- results: rlhfgym compare --config " + frontier + " --seeds 2 --iterations 1 -->\n<!-- /results -->\n\nProse after.\n";
        File.WriteAllText(page, prose);

        var planned = CliRunner.Run("results", "--doc", page, "--runs", runs, "--plan", "--json");
        Assert.True(planned.ExitCode == 0, planned.Describe());
        Assert.Equal([0, 0], planned.LastJson()["regions"]!.AsArray().Select(r => (int)r!["finished"]!));
        Assert.Equal(prose, File.ReadAllText(page)); // a plan writes nothing

        var first = CliRunner.Run("results", "--doc", page, "--runs", runs, "--json");
        Assert.True(first.ExitCode == 0, first.Describe());
        var regions = first.LastJson()["regions"]!.AsArray();
        Assert.Equal(["plain", "frontier"], regions.Select(r => (string)r!["name"]!));
        Assert.Equal([2, 2], regions.Select(r => (int)r!["ran"]!));
        Assert.Equal([0, 2], regions.Select(r => (int)r!["reused"]!)); // x (β 0.3) was plain's cell a
        string text = File.ReadAllText(page);
        Assert.StartsWith("# Results\n\nProse before.\n\n<!-- results: rlhfgym compare --config " + plain, text);
        Assert.DoesNotContain("old table", text);
        Assert.Contains("| a | 2 |", text);
        Assert.Contains("Prose between.", text);
        Assert.Contains("### Gold against KL", text);
        Assert.Contains("| s | 1 |", text);
        Assert.Contains("![Gold against KL: frontier](img/frontier-gold-vs-kl.png)", text);
        Assert.True(File.Exists(Path.Combine(dir.Path, "img", "frontier-gold-vs-kl.png")));
        Assert.EndsWith("<!-- /results -->\n\nProse after.\n", text);

        // Again: every run is reused and the page is the same to the byte.
        var again = CliRunner.Run("results", "--doc", page, "--runs", runs, "--only", "frontier,plain", "--json");
        Assert.True(again.ExitCode == 0, again.Describe());
        Assert.All(again.LastJson()["regions"]!.AsArray(), r => Assert.Equal(0, (int)r!["ran"]!));
        Assert.Equal(0, (int)again.LastJson()["changed"]!);
        Assert.Equal(text, File.ReadAllText(page));
    }

    [Theory]
    [InlineData("<!-- results: rlhfgym demo --json -->\n<!-- /results -->\n", "page.md:1: a results region must be made by 'rlhfgym compare")]
    [InlineData("x\n<!-- results: rlhfgym compare --preset paper-main --out elsewhere -->\n<!-- /results -->\n", "page.md:2:")]
    [InlineData("<!-- results: rlhfgym compare --preset paper-every -->\n<!-- /results -->\n", "page.md:1: --preset must be one of")]
    [InlineData("<!-- results: rlhfgym compare --preset paper-main --seeds 0 -->\n<!-- /results -->\n", "page.md:1: --seeds")]
    [InlineData("<!-- results: rlhfgym compare --preset paper-main -->\ntext\n", "page.md:1: the results region opened here has no '<!-- /results -->'")]
    [InlineData("a\nb\n<!-- /results -->\n", "page.md:3: '<!-- /results -->' closes no region")]
    [InlineData("<!-- results: rlhfgym compare --preset paper-main -->\n<!-- results: rlhfgym compare --preset paper-cross -->\n", "page.md:2: a results region opens inside the one opened at line 1")]
    [InlineData("<!-- results: rlhfgym compare --preset paper-main -->\n<!-- /results -->\n<!-- results: rlhfgym compare --preset paper-main --seeds 3 -->\n<!-- /results -->\n", "two regions run the grid 'paper-main' (lines 1, 3)")]
    [InlineData("# no regions\n", "has no results regions")]
    public void A_bad_page_is_an_error_naming_the_line(string text, string expected)
    {
        using var dir = new TempDir();
        string page = dir.File("page.md");
        File.WriteAllText(page, text);
        var r = CliRunner.Run("results", "--doc", page, "--runs", Path.Combine(dir.Path, "runs"), "--plan", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, (string?)r.LastJson()["error"]);
        Assert.Equal(text, File.ReadAllText(page));
    }

    [Fact]
    public void The_projects_results_page_names_only_commands_that_run()
    {
        // docs/results.md is regenerated by `rlhfgym results`: every region's command must still parse as a grid (a
        // renamed preset or a moved grid file would otherwise only show when someone spends hours regenerating it).
        using var dir = new TempDir();
        var r = ProcessRunner.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll"), "results", "--doc", Path.Combine("docs", "results.md"),
            "--runs", Path.Combine(dir.Path, "runs"), "--plan", "--json"], TimeSpan.FromMinutes(2), workingDirectory: RlhfGym.Tests.RepositoryRoot.Path);
        Assert.True(r.ExitCode == 0, r.Describe());
        var names = r.LastJson()["regions"]!.AsArray().Select(x => (string)x!["name"]!).ToList();
        Assert.Contains("paper-main-frontier", names);
        Assert.Contains("paper-normalizer-LocationTrend", names);
        Assert.Contains("c-ent-sweep-BoundaryNoise", names);
    }

    [Fact]
    public void Results_names_a_missing_page_and_an_unknown_region()
    {
        using var dir = new TempDir();
        var missing = CliRunner.Run("results", "--doc", Path.Combine(dir.Path, "none.md"), "--plan", "--json");
        Assert.Contains("none.md does not exist", (string?)missing.LastJson()["error"]);
        string page = dir.File("page.md");
        File.WriteAllText(page, "<!-- results: rlhfgym compare --preset paper-main -->\n<!-- /results -->\n");
        var unknown = CliRunner.Run("results", "--doc", page, "--only", "paper-mian", "--plan", "--json");
        Assert.Contains("--only: no region named 'paper-mian' (regions: paper-main)", (string?)unknown.LastJson()["error"]);
    }

    [Fact]
    public void A_region_body_is_replaced_between_blank_lines_and_nothing_else_moves()
    {
        var page = ResultsDocument.Parse("p.md", "a\r\n<!-- results: rlhfgym compare --preset paper-main -->\r\nold\r\n<!-- /results -->\r\nz");
        var block = Assert.Single(page.Blocks);
        Assert.Equal("rlhfgym compare --preset paper-main", block.Command);
        var updated = page.WithBody(block, "| t |\n|---|\n");
        Assert.Equal("a\r\n<!-- results: rlhfgym compare --preset paper-main -->\r\n\r\n| t |\r\n|---|\r\n\r\n<!-- /results -->\r\nz", updated.Text);
        Assert.Equal(updated.Text, updated.WithBody(Assert.Single(updated.Blocks), "| t |\n|---|").Text);
    }

    [Fact]
    public void The_run_store_files_a_run_under_what_it_trained_not_under_the_cell_name()
    {
        var cell = new CompareCell { Name = "segment", Env = "PhraseWorld-Segment-v0" };
        string key = RunStore.Key(cell, 80);
        Assert.StartsWith("PhraseWorld-Segment-v0__ppo__beta-0.3__", key);
        Assert.Equal(key, RunStore.Key(cell with { Name = "ppo-segment", Series = "s", KlCoef = 0.3 }, 80));
        Assert.NotEqual(key, RunStore.Key(cell with { KlCoef = 1 }, 80));
        Assert.NotEqual(key, RunStore.Key(cell, 40));
        Assert.NotEqual(key, RunStore.Key(cell with { Normalizer = "location" }, 80)); // the key reads the cell, not the bundle
        Assert.NotEqual(key, RunStore.Key(cell with { Agent = "reinforce" }, 80));
        Assert.NotEqual(key, RunStore.Key(cell with { LengthNorm = true }, 80));
    }
}
