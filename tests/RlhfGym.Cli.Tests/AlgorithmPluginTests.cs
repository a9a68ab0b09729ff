using System.Text.Json.Nodes;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

/// <summary>An algorithm in an assembly of its own (examples/AlgorithmPlugin), loaded by the CLI from its file.</summary>
public class AlgorithmPluginTests
{
    /// <summary>The example's build output, in this test build's configuration (bin/&lt;Configuration&gt;/net10.0).</summary>
    private static string PluginDll()
    {
        var framework = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string path = RepositoryRoot.File("examples", "AlgorithmPlugin", "bin", framework.Parent!.Name, framework.Name, "AlgorithmPlugin.dll");
        Assert.True(File.Exists(path), $"{path} not built (the solution build builds examples/AlgorithmPlugin)");
        return path;
    }

    [Fact]
    public void A_plugin_algorithm_trains_logs_its_figure_stops_resumes_and_runs_in_compare()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), run = Path.Combine(dir.Path, "run"), dll = PluginDll();
        RandomBundle.Write(bundle, maxNewTokens: 8, seed: 5);
        string[] common = ["--agent", "best-of-k", "--algorithm-option", "k=2", "--env", bundle, "--num-envs", "8", "--iterations", "3", "--eval-every", "3", "--out", run, "--json"];

        // Two iterations, then a stop that leaves a checkpoint (a time-sliced job).
        var first = CliRunner.Run(["train", "--algorithm-assembly", dll, .. common, "--stop-after", "2"]);
        Assert.True(first.ExitCode == 0, first.StdOut + first.StdErr);
        Assert.Equal(2, (int)first.LastJson()["stopped_after"]!);
        Assert.Contains("registered best-of-k", first.StdErr);
        var runJson = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "run.json")))!;
        Assert.Equal(Path.GetFullPath(dll), (string?)runJson["algorithm_assembly"]);
        Assert.Equal("2", (string?)runJson["options"]!["AlgorithmOptions"]!["k"]);
        // What trained it, as `info` reports it.
        var info = CliRunner.Run("info", "--json").LastJson();
        foreach (var key in new[] { "torch", "device", "threads", "cpu_vendor", "mkl_kernels" })
            Assert.Equal(info[key]?.ToJsonString(), runJson["machine"]![key]?.ToJsonString());

        // Resuming without the assembly says which one to load.
        var without = CliRunner.Run(["train", .. common, "--resume"]);
        Assert.NotEqual(0, without.ExitCode);
        var error = (string?)without.LastJson()["error"];
        Assert.Contains("--algorithm-assembly", error);
        Assert.Contains(Path.GetFullPath(dll), error);

        var resumed = CliRunner.Run(["train", "--algorithm-assembly", dll, .. common, "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.StdOut + resumed.StdErr);
        Assert.Equal("best-of-k", (string?)resumed.LastJson()["algorithm"]);
        Assert.NotNull(resumed.LastJson()["gold_score_policy"]);
        var rows = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal([1, 2, 3], rows.Select(r => (int)r["iteration"]!));
        Assert.All(rows, r => Assert.True(double.IsFinite((double)r["best_return"]!))); // its own figure, logged like the built-ins'

        // A compare cell names it like a built-in.
        string grid = Path.Combine(dir.Path, "grid.json");
        File.WriteAllText(grid, new JsonObject { ["cells"] = new JsonArray(new JsonObject { ["name"] = "mine", ["env"] = bundle, ["agent"] = "best-of-k" }) }.ToJsonString());
        var compare = CliRunner.Run("compare", "--config", grid, "--seeds", "1", "--iterations", "1", "--out", Path.Combine(dir.Path, "cmp"), "--algorithm-assembly", dll, "--json");
        Assert.True(compare.ExitCode == 0, compare.StdOut + compare.StdErr);
        var row = compare.LastJson()["table"]![0]!;
        Assert.Equal("mine", (string?)row["cell"]);
        Assert.NotNull(row["gold_score_policy"]);
        Assert.Null(row["kl"]); // best-of-k reports no KL figure: left out, not a crash
        var unloaded = CliRunner.Run("compare", "--config", grid, "--seeds", "1", "--iterations", "1", "--out", Path.Combine(dir.Path, "cmp2"), "--json");
        Assert.Contains("best-of-k", (string?)unloaded.LastJson()["error"]);
    }

    [Fact]
    public void Bad_algorithm_assemblies_are_clear_errors_naming_the_file()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle");
        RandomBundle.Write(bundle, maxNewTokens: 8, seed: 5);
        string Error(string assembly, params string[] extra) =>
            (string?)CliRunner.Run(["train", "--algorithm-assembly", assembly, "--env", bundle, "--num-envs", "8", "--iterations", "1", "--out", Path.Combine(dir.Path, "r"), .. extra, "--json"]).LastJson()["error"] ?? "";

        string missing = Path.Combine(dir.Path, "nope.dll");
        Assert.Contains($"{missing}: file not found", Error(missing));
        string text = dir.File("text.dll");
        File.WriteAllText(text, "not an assembly");
        Assert.Contains("not a .NET assembly", Error(text));
        string noPlugin = Path.Combine(AppContext.BaseDirectory, "RlhfGym.Models.dll");
        Assert.Contains("no public class implements IAlgorithmPlugin", Error(noPlugin));
        Assert.Contains("--algorithm-option must be KEY=VALUE", Error(PluginDll(), "--agent", "best-of-k", "--algorithm-option", "k"));
        Assert.Contains("best-of-k needs k >= 2", Error(PluginDll(), "--agent", "best-of-k", "--algorithm-option", "k=1"));
    }
}
