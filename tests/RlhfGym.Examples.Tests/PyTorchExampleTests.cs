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
    public async Task The_rloo_example_trains_against_a_served_env_and_is_judged_on_held_out_prompts()
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
        // What a short run shows reliably: gold before and after are real judge scores, and the updates move the policy
        // away from the reference (the KL it reports grows), so gradients flow through the served log-probs. Whether ten
        // iterations raise gold is not reliable: on a fresh 2-core VM (2026-12-01) seeds 1-3 gained -0.19 to +0.31 on
        // 88-176 held-out samples, within the evaluation's noise, so that stays a claim for longer runs, not for CI.
        Assert.True(double.IsFinite(before) && double.IsFinite(after) && Math.Abs(before) < 10 && Math.Abs(after) < 10, $"gold {before} -> {after}\n{stdout}");
        var kls = stdout.Split('\n').Where(l => l.StartsWith("iteration")).Select(l => double.Parse(l.Split("kl")[1].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(10, kls.Count);
        Assert.True(kls.All(double.IsFinite) && kls.Skip(5).Any(k => k > 0.05), $"the policy should move away from the reference: kl {string.Join(", ", kls)}\n{stdout}");
    }
}
