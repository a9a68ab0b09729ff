using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Cli.Tests;

public class TrainVerbTests
{
    [Fact]
    public void Train_then_eval_report_the_documented_figures()
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), run = Path.Combine(dir.Path, "run");
        RandomBundle.Write(bundle, maxNewTokens: 8, seed: 5);
        var r = CliRunner.Run("train", "--agent", "reinforce", "--env", bundle, "--num-envs", "8", "--iterations", "2", "--eval-every", "2", "--out", run, "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        foreach (var key in new[] { "gold_score_sft", "gold_score_policy", "win_rate_vs_sft", "lc_glm_failed", "kl" })
            Assert.NotNull(json[key]);
        // The length-controlled win rate is a number, or null exactly when its GLM failed (AlpacaEval's bound).
        Assert.Equal((bool)json["lc_glm_failed"]!, json["lc_win_rate"] is null);
        Assert.True(File.Exists(Path.Combine(run, "metrics.jsonl")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(run, "tensorboard"), "events.out.tfevents*", SearchOption.AllDirectories));

        var e = CliRunner.Run("eval", "--run", run, "--env", bundle, "--samples-per-prompt", "2", "--json");
        Assert.True(e.ExitCode == 0, e.StdErr);
        Assert.Equal((bool)e.LastJson()["lc_glm_failed"]!, e.LastJson()["lc_win_rate"] is null);

        var missing = CliRunner.Run("eval", "--run", Path.Combine(dir.Path, "nope"), "--env", bundle, "--json");
        Assert.Contains("run directory not found", (string?)missing.LastJson()["error"]);
        var again = CliRunner.Run("train", "--env", bundle, "--num-envs", "8", "--iterations", "2", "--out", run, "--json");
        Assert.Contains("--resume", (string?)again.LastJson()["error"]);
        var badAgent = CliRunner.Run("train", "--agent", "dqn", "--env", bundle, "--out", Path.Combine(dir.Path, "r2"), "--json");
        Assert.Contains("ppo, reinforce, grpo", (string?)badAgent.LastJson()["error"]);
    }

    [Theory]
    [InlineData(new[] { "--kl-coef", "-0.1" }, "--kl-coef")]
    [InlineData(new[] { "--kl-coef", "NaN" }, "--kl-coef")]
    [InlineData(new[] { "--kl-target", "0" }, "--kl-target")]
    [InlineData(new[] { "--temperature", "Infinity" }, "--temperature")]
    [InlineData(new[] { "--lr", "Infinity" }, "--lr")]
    [InlineData(new[] { "--agent", "reinforce", "--k", "0" }, "k >= 2")]
    public void A_bad_training_option_is_named_before_anything_is_written(string[] option, string named)
    {
        using var dir = new TempDir();
        string bundle = Path.Combine(dir.Path, "bundle"), run = Path.Combine(dir.Path, "run");
        RandomBundle.Write(bundle, maxNewTokens: 8, seed: 5);
        var r = CliRunner.Run(["train", "--env", bundle, "--num-envs", "8", "--iterations", "1", "--out", run, .. option, "--json"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(named, (string)r.LastJson()["error"]!);
        Assert.False(File.Exists(Path.Combine(run, "run.json")), "run.json written before the option was checked");
    }

    [Fact]
    public void A_command_line_that_does_not_parse_still_ends_with_one_json_line_under_json()
    {
        var r = CliRunner.Run("train", "--iterations", "abc", "--out", "x", "--json");
        Assert.Equal(1, r.ExitCode);
        var json = r.LastJson();
        Assert.Equal("ParseError", (string)json["kind"]!);
        Assert.Contains("abc", (string)json["error"]!);
        var unknown = CliRunner.Run("info", "--no-such-option", "--json");
        Assert.Equal("ParseError", (string)unknown.LastJson()["kind"]!);
        Assert.Contains("--no-such-option", (string)unknown.LastJson()["error"]!);
    }
}
