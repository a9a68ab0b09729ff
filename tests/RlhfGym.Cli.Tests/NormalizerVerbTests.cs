namespace RlhfGym.Cli.Tests;

public class NormalizerVerbTests
{
    private static (int Exit, string Error, bool Wrote) Fit(TempDir dir, string content, string kind = "location")
    {
        string input = dir.File($"in-{Guid.NewGuid():N}.jsonl"), output = dir.File($"out-{Guid.NewGuid():N}.json");
        File.WriteAllText(input, content);
        var r = CliRunner.Run("normalizer", "fit", "--segments", input, "--out", output, "--kind", kind, "--json");
        return (r.ExitCode, (string?)r.LastJson()["error"] ?? "", File.Exists(output));
    }

    [Fact]
    public void Fit_writes_the_documented_object()
    {
        using var dir = new TempDir();
        string input = dir.File("s.jsonl"), output = dir.File("n.json");
        File.WriteAllLines(input, ["{\"rewards\":[0.1,0.5,0.9]}", "{\"rewards\":[0.2,0.8]}", "{\"rewards\":[1.0]}", "{\"rewards\":[0.0,0.4,0.7,1.1]}"]);
        var r = CliRunner.Run("normalizer", "fit", "--segments", input, "--out", output, "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal("location", (string?)json["kind"]);
        Assert.NotNull(json["mean"]!["slope"]);
        Assert.NotNull(json["std"]!["intercept"]);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void Bad_inputs_are_named_and_write_nothing()
    {
        using var dir = new TempDir();
        var nan = Fit(dir, "{\"rewards\":[0.5,1.0]}\n{\"rewards\":[1.0, NaN]}\n");
        Assert.Equal(1, nan.Exit);
        Assert.Contains(":2: a reward is not finite", nan.Error);
        Assert.False(nan.Wrote);
        var inf = Fit(dir, "{\"rewards\":[Infinity]}\n", "global");
        Assert.Contains(":1: a reward is not finite", inf.Error);
        Assert.False(inf.Wrote);
        var empty = Fit(dir, "");
        Assert.Contains("file is empty", empty.Error);
        Assert.False(empty.Wrote);
        var emptyList = Fit(dir, "{\"rewards\":[1.0]}\n{\"rewards\":[]}\n");
        Assert.Contains(":2: 'rewards' is empty", emptyList.Error);
        Assert.False(emptyList.Wrote);
        var single = Fit(dir, "{\"rewards\":[1.0]}\n{\"rewards\":[2.0]}\n");
        Assert.Contains("nothing to regress", single.Error);
        Assert.False(single.Wrote);
        var badKind = Fit(dir, "{\"rewards\":[1.0]}\n", "median");
        Assert.Contains("location, global, last or none", badKind.Error);
    }
}
