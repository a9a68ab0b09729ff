using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace RlhfGym.Examples.Tests;

/// <summary>
/// clients/python/examples/rloo_torch.py, a short run of it, as CI: Debian's python3-torch, the policy initialised from
/// the served env's own reference model (downloaded through the assets op), trained against the segment env's dense
/// rewards with the env's reference log-probs for the KL, and judged by the env's gold judge on held-out prompts.
/// </summary>
public class PyTorchExampleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task The_rloo_example_raises_gold_on_held_out_prompts()
    {
        using var dir = new TempDir();
        string bundle = TestBundles.BuildLearnable(dir.Path);
        await using var server = await TestServer.Start(env: bundle);
        var (ok, stdout, stderr) = PythonClient.RunFor(TimeSpan.FromMinutes(6),
            PythonClient.Example("rloo_torch.py"), "--address", server.Address, "--iterations", "10", "--lr", "3e-4", "--eval-prompts", "88", "--seed", "1", "--json");
        Assert.True(ok, stdout + stderr);
        var summary = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!.AsObject();
        double before = (double)summary["gold_before"]!, after = (double)summary["gold_after"]!;
        output.WriteLine(summary.ToJsonString()); // the figures, for `dotnet test --logger "console;verbosity=detailed"`
        // Ten iterations of 32 episodes, evaluated on the 22 test prompts four times each with one sampling seed: a
        // learning policy gains several tenths of gold here; a broken one (wrong sign, no gradient, wrong KL) does not.
        Assert.True(after > before + 0.15, $"gold {before} -> {after}\n{stdout}");
    }
}
