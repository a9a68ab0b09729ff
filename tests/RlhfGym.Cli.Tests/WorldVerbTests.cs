namespace RlhfGym.Cli.Tests;

public class WorldVerbTests
{
    [Fact]
    public void World_build_then_eval_on_a_missing_model_gives_named_errors()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-cli-" + Guid.NewGuid().ToString("N"));
        try
        {
            var r = CliRunner.Run("world", "build", "--out", dir, "--seed", "4", "--json");
            Assert.True(r.ExitCode == 0, r.StdErr);
            var json = r.LastJson();
            Assert.True((double)json["headroom"]! > 1.0);
            Assert.Equal(12, (int)json["topics"]!);

            var missing = CliRunner.Run("world", "eval", "--world", dir, "--model", Path.Combine(dir, "no-model"), "--json");
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("config.json", (string?)missing.LastJson()["error"]);

            var noWorld = CliRunner.Run("world", "segmentation", "--world", Path.Combine(dir, "nope"), "--model", dir, "--json");
            Assert.Equal(1, noWorld.ExitCode);
            Assert.Contains("world directory not found", (string?)noWorld.LastJson()["error"]);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void World_build_takes_dials_by_name_or_value_and_refuses_bad_ones()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("world", "build", "--out", Path.Combine(dir.Path, "w"), "--dials", "BoundaryNoise", "--verbosity-bias", "0.05", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var dials = r.LastJson()["dials"]!;
        Assert.Equal(0.5, (double)dials["boundary_noise"]!);
        Assert.Equal(0.05, (double)dials["verbosity_bias"]!);
        Assert.Equal(0, (double)dials["location_trend"]!);
        Assert.Equal(0.5, RlhfGym.PhraseWorld.WorldStore.Load(Path.Combine(dir.Path, "w")).Dials.BoundaryNoise);

        foreach (var (args, expect) in new[]
        {
            (new[] { "--dials", "Noisy" }, "--dials must be one of LocationTrend, BoundaryNoise, VerbosityBias"),
            (new[] { "--location-trend", "1.5" }, "--location-trend must be in [0, 1]"),
            (new[] { "--boundary-noise", "-0.1" }, "--boundary-noise must be in [0, 1]"),
        })
        {
            var bad = CliRunner.Run(["world", "build", "--out", Path.Combine(dir.Path, "bad"), .. args, "--json"]);
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains(expect, (string?)bad.LastJson()["error"]);
            Assert.False(Directory.Exists(Path.Combine(dir.Path, "bad")));
        }
    }
}
