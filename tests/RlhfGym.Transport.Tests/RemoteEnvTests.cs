using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Transport.Client;

namespace RlhfGym.Transport.Tests;

public class RemoteEnvTests
{
    private static int[] Actions(Random rng, EnvSpec spec) =>
        Enumerable.Range(0, spec.NumEnvs).Select(_ => rng.NextDouble() < 0.15 ? spec.EosIds[0] : rng.Next(3, spec.VocabSize)).ToArray();

    [Fact]
    public async Task Remote_and_in_process_envs_give_identical_prompts_and_rewards()
    {
        await using var server = await TestServer.Start();
        using var local = new TextVectorEnv(EnvBundle.Load(TestServer.Bundle.Value), 4);
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 4);
        Assert.Equal(local.Spec.VocabSize, remote.Spec.VocabSize);
        Assert.Equal(local.Spec.Options, remote.Spec.Options);
        Assert.True(local.Spec.MaxSequenceLength > local.Spec.MaxNewTokens, $"max_seq_len {local.Spec.MaxSequenceLength}");
        Assert.Equal(local.Spec.MaxSequenceLength, remote.Spec.MaxSequenceLength); // spec's max_seq_len over the wire
        Assert.Equal(local.Reset(9).Prompts, remote.Reset(9).Prompts);
        var rng = new Random(1);
        for (int s = 0; s < 30; s++)
        {
            var a = Actions(rng, local.Spec);
            var l = local.Step(a);
            var r = remote.Step(a);
            Assert.Equal(l.Rewards, r.Rewards);
            Assert.Equal(l.Terminated, r.Terminated);
            Assert.Equal(l.Truncated, r.Truncated);
            Assert.Equal(l.RefLogProb, r.RefLogProb);
            Assert.Equal(l.ResetPrompts, r.ResetPrompts);
            for (int b = 0; b < 4; b++)
                Assert.Equal(l.Episodes[b]?.PerToken, r.Episodes[b]?.PerToken);
        }
    }

    [Fact]
    public async Task The_env_checker_passes_on_a_remote_env()
    {
        await using var server = await TestServer.Start();
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 2);
        var report = EnvChecker.Check(remote, seed: 3, steps: 30);
        Assert.True(report.Passed, string.Join("\n", report.Failures.Select(f => $"{f.Name}: {f.Detail}")));
    }

    [Fact]
    public async Task The_python_client_sees_the_same_prompts_and_rewards()
    {
        await using var server = await TestServer.Start();
        var (ok, stdout, stderr) = PythonClient.Run(PythonClient.Example("random_agent.py"), server.Address, "5", "25");
        Assert.True(ok, stderr);
        var json = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;
        using var local = new TextVectorEnv(EnvBundle.Load(TestServer.Bundle.Value), 4);
        var prompts = local.Reset(5).Prompts;
        Assert.Equal(prompts, json["prompts"]!.AsArray().Select(x => x!.AsArray().Select(t => (int)t!).ToArray()).ToArray());
        var actions = json["actions"]!.AsArray();
        var rewards = json["rewards"]!.AsArray();
        for (int s = 0; s < actions.Count; s++)
        {
            var r = local.Step(actions[s]!.AsArray().Select(t => (int)t!).ToArray());
            Assert.Equal(r.Rewards, rewards[s]!.AsArray().Select(v => (float)(double)v!).ToArray());
        }
    }

    [Fact]
    public async Task A_restarted_server_gives_a_clear_error_and_the_client_reconnects()
    {
        int port = TestServer.FreePort();
        var server = await TestServer.Start(port);
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 2, stepTimeout: TimeSpan.FromSeconds(5));
        remote.Reset(1);
        remote.Step([5, 6]);
        await server.DisposeAsync();
        await using (var restarted = await TestServer.Start(port))
        {
            var ex = Assert.Throws<SessionLostException>(() => remote.Step([5, 6])); // the request was lost with the old server
            Assert.Equal("session_lost", ex.Code);
            Assert.Contains("call Reset", ex.Message);
            remote.Reset(1);
            Assert.Equal(2, remote.Step([5, 6]).Rewards.Length);
        }
        // The server gone for good: a timeout with a clear message, never a hang; the session is kept for a retry.
        var gone = Assert.Throws<RemoteEnvException>(() => remote.Step([5, 6]));
        Assert.Equal("timeout", gone.Code);
        Assert.Contains("no reply to 'step'", gone.Message);
    }

    [Fact]
    public async Task A_dead_clients_session_is_reclaimed_after_the_timeout()
    {
        await using var server = await TestServer.Start(sessionTimeout: 1);
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 1, heartbeat: TimeSpan.Zero);
        Assert.Null(remote.HeartbeatInterval);
        remote.Reset(1);
        Thread.Sleep(2500); // silent: no step, no ping
        var ex = Assert.Throws<SessionLostException>(() => remote.Step([5]));
        Assert.Equal("session_lost", ex.Code);
        Assert.Contains("call Reset", ex.Message);
        Assert.Throws<SessionLostException>(() => remote.Step([5])); // still no session until Reset
        remote.Reset(1); // a new session
        remote.Ping();
        remote.Step([5]);
    }

    [Fact]
    public async Task The_heartbeat_keeps_a_session_through_a_pause_longer_than_the_timeout()
    {
        await using var server = await TestServer.Start(sessionTimeout: 2);
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 1);
        Assert.Equal(TimeSpan.FromSeconds(0.5), remote.HeartbeatInterval); // a quarter of the announced timeout
        remote.Reset(1);
        remote.Step([5]);
        Thread.Sleep(6000); // three session timeouts of silence from the agent (a long update)
        remote.Step([5]);
        Assert.True(remote.HeartbeatsAnswered >= 3, $"{remote.HeartbeatsAnswered} heartbeats");
    }

    [Fact]
    public async Task The_heartbeat_notices_a_restart_and_the_next_call_says_so_once()
    {
        int port = TestServer.FreePort();
        var server = await TestServer.Start(port, sessionTimeout: 2);
        using var remote = new RemoteVectorEnv(server.Address, numEnvs: 2);
        remote.Reset(1);
        await server.DisposeAsync();
        await using var restarted = await TestServer.Start(port, sessionTimeout: 2);
        Thread.Sleep(3000); // the agent is busy; the heartbeat asks the new server about the old session
        Assert.Throws<SessionLostException>(() => remote.Step([5, 6]));
        remote.Reset(2);
        Assert.Equal(2, remote.Step([5, 6]).Rewards.Length);
        Assert.Equal(2, remote.Step([7, 8]).Rewards.Length);
    }

    [Fact]
    public void No_server_is_a_timeout_with_a_clear_message()
    {
        var ex = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv($"tcp://127.0.0.1:{TestServer.FreePort()}", connectTimeout: TimeSpan.FromMilliseconds(500)));
        Assert.Equal("timeout", ex.Code);
        Assert.Contains("rlhfgym serve", ex.Message);
    }
}
