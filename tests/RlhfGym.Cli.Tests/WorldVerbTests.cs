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
}
