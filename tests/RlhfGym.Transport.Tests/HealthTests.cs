using RlhfGym.Transport.Client;

namespace RlhfGym.Transport.Tests;

public class HealthTests
{
    [Fact]
    public async Task Health_reports_readiness_sessions_sub_envs_and_load_without_a_session()
    {
        await using var server = await TestServer.Start();
        var h = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10));
        // The default env is preloaded in the background; a built bundle is ready in well under a few seconds.
        for (int i = 0; i < 100 && !h.Ready; i++)
        {
            await Task.Delay(50);
            h = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10));
        }
        Assert.True(h.Ready);
        Assert.False(h.Draining);
        Assert.Null(h.Error);
        Assert.Equal(0, h.Sessions);
        Assert.Equal(80, h.MaxSessions);
        Assert.Equal("cpu", h.Device);
        Assert.Equal(TestServer.Bundle.Value, h.Env);
        long before = h.Requests;

        using (var a = new RemoteVectorEnv(server.Address, numEnvs: 3, heartbeat: TimeSpan.Zero))
        using (var b = new RemoteVectorEnv(server.Address, numEnvs: 2, heartbeat: TimeSpan.Zero))
        {
            a.Reset(seed: 1);
            var busy = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10));
            Assert.Equal(2, busy.Sessions);
            Assert.Equal(5, busy.SubEnvs);
            // hello + make for each client, a's reset, and the health request before this one.
            Assert.Equal(before + 6, busy.Requests);
            Assert.InRange(busy.Busy, 0, 1);
            Assert.True(busy.UptimeSeconds > 0);
        }
        Assert.Equal(0, EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10)).Sessions);
    }

    [Fact]
    public async Task A_server_whose_default_env_cannot_load_is_not_ready_and_says_why()
    {
        string missing = Path.Combine(Path.GetTempPath(), "rlhfgym-no-such-bundle-" + Guid.NewGuid().ToString("N"));
        await using var server = await TestServer.Start(env: missing);
        var h = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10));
        for (int i = 0; i < 100 && h.Error is null; i++)
        {
            await Task.Delay(50);
            h = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(10));
        }
        Assert.False(h.Ready);
        Assert.Contains(missing, h.Error);
    }

    [Fact]
    public void Health_of_an_address_nobody_serves_is_a_timeout_naming_it()
    {
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        var e = Assert.Throws<RemoteEnvException>(() => EnvServerProbe.Health(address, TimeSpan.FromMilliseconds(200)));
        Assert.Equal("timeout", e.Code);
        Assert.Contains(address, e.Message);
    }
}
