namespace RlhfGym.Cli.Tests;

public class BundleVerbTests
{
    [Fact]
    public void From_hf_writes_a_bundle_the_env_checker_passes()
    {
        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("ref"));
        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"tell me about the sea"}""", """{"prompt":"hi there"}"""]);
        var r = CliRunner.Run("bundle", "from-hf", "--reference", dir.File("ref"), "--reward", dir.File("rm"), "--prompts", dir.File("prompts.jsonl"),
            "--out", dir.File("bundle"), "--max-new-tokens", "16", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal("chatml", (string?)json["chat_template"]);
        Assert.Equal(2, json["eos_ids"]!.AsArray().Count);
        Assert.Equal("llama", (string?)json["reference_family"]);
        Assert.Equal("qwen2", (string?)json["reward_family"]);

        var check = CliRunner.Run("env", "check", "--env", dir.File("bundle"), "--num-envs", "2", "--json");
        Assert.True(check.ExitCode == 0, check.StdErr + check.StdOut);
        Assert.True((bool)check.LastJson()["passed"]!);

        // The RM's preference pairs fit the normalizers, and location becomes the default.
        File.WriteAllLines(dir.File("prefs.jsonl"), Enumerable.Range(0, 8).Select(i =>
            new System.Text.Json.Nodes.JsonObject { ["prompt"] = "say it", ["chosen"] = $"a sea {(char)('a' + i)}", ["rejected"] = "no" }.ToJsonString()));
        var fitted = CliRunner.Run("bundle", "from-hf", "--reference", dir.File("ref"), "--reward", dir.File("rm"), "--prompts", dir.File("prompts.jsonl"),
            "--out", dir.File("fitted"), "--max-new-tokens", "16", "--preferences", dir.File("prefs.jsonl"), "--json");
        Assert.True(fitted.ExitCode == 0, fitted.StdErr);
        Assert.Equal("location", (string?)fitted.LastJson()["normalizer"]);
        Assert.Equal(8, (int)fitted.LastJson()["normalizer_fit"]!["pairs"]!);

        var missing = CliRunner.Run("bundle", "from-hf", "--reference", dir.File("nope"), "--reward", dir.File("rm"), "--prompts", dir.File("prompts.jsonl"),
            "--out", dir.File("b2"), "--tokenizer", dir.File("ref"), "--json");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nope", (string)missing.LastJson()["error"]!);
    }
}
