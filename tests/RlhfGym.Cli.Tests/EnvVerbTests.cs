using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

public class EnvVerbTests
{
    [Fact]
    public void Env_check_passes_on_a_bundle_and_names_bad_options()
    {
        using var dir = new TempDir();
        RandomBundle.Write(dir.Path, maxNewTokens: 16, seed: 2);
        var r = CliRunner.Run("env", "check", "--env", dir.Path, "--num-envs", "2", "--steps", "24", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.True((bool)json["passed"]!);
        Assert.True(json["checks"]!.AsArray().Count >= 9);

        var bad = CliRunner.Run("env", "check", "--env", dir.Path, "--normalizer", "median", "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("location, global, last or none", (string?)bad.LastJson()["error"]);
        var unknown = CliRunner.Run("env", "check", "--env", "NoSuchEnv-v9", "--json");
        Assert.Contains("PhraseWorld-Segment-v0", (string?)unknown.LastJson()["error"]);
    }

    [Fact]
    public void Bench_env_reports_its_three_ratios()
    {
        var r = CliRunner.Run("bench", "env", "--batch", "4", "--steps", "8", "--repeats", "1", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        foreach (var key in new[] { "step_overhead_ratio", "incremental_vs_recompute", "score_vs_step", "raw_forward_gflops" })
            Assert.True((double)json[key]! > 0, key);
    }
}
