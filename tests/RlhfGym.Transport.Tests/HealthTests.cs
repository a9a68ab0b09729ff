using NetMQ;
using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;
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
            // Every answered request was in one burst; a's reset ran a prefill, so computing took time; the phases'
            // running totals fit in the server's life.
            Assert.InRange(busy.Bursts, h.Bursts + 1, h.Bursts + 6);
            Assert.True(busy.ComputeSeconds > h.ComputeSeconds, $"compute_s {busy.ComputeSeconds} did not grow from {h.ComputeSeconds}");
            Assert.True(busy.GatherSeconds >= 0 && busy.ReplySeconds > 0);
            Assert.True(busy.GatherSeconds + busy.ComputeSeconds + busy.ReplySeconds < busy.UptimeSeconds);
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
    public async Task While_a_make_waits_for_a_bundle_build_the_server_answers_everyone_else()
    {
        // A registered id whose builder holds until released: a `make` of it must not stop health probes, heartbeats
        // or other sessions (a liveness probe that timed out here would restart the server in the middle of its build).
        string id = "test-slow-build-" + Guid.NewGuid().ToString("N");
        string cached = Path.Combine(EnvRegistry.CacheRoot, "bundles", id);
        using var release = new ManualResetEventSlim();
        int builds = 0;
        EnvRegistry.Register(id, (dir, _, _) =>
        {
            Interlocked.Increment(ref builds);
            if (!release.Wait(TimeSpan.FromMinutes(2))) throw new TimeoutException("the test never released the build");
            RandomBundle.Write(dir, maxNewTokens: 12, seed: 6);
            return dir;
        });
        try
        {
            await using var server = await TestServer.Start();
            var slow = Task.Run(() => new RemoteVectorEnv(server.Address, env: id, numEnvs: 2, heartbeat: TimeSpan.Zero, connectTimeout: TimeSpan.FromMinutes(2), stepTimeout: TimeSpan.FromMinutes(2)));
            while (Volatile.Read(ref builds) == 0) await Task.Delay(20);
            // The build is running: a probe, a session on the default env and its steps are answered meanwhile.
            var health = EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(5));
            Assert.Equal(0, health.Sessions);
            using (var other = new RemoteVectorEnv(server.Address, numEnvs: 2, heartbeat: TimeSpan.Zero, stepTimeout: TimeSpan.FromSeconds(10)))
            {
                other.Reset(seed: 1);
                other.Step([5, 6]);
            }
            Assert.False(slow.IsCompleted);
            release.Set();
            using var made = await slow.WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(id, made.Spec.Id);
            made.Reset(seed: 2);
            Assert.Equal(1, builds);
        }
        finally
        {
            release.Set();
            if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
        }
    }

    [Fact]
    public async Task A_make_waiting_for_a_build_when_the_server_stops_is_told_it_is_draining()
    {
        string id = "test-held-build-" + Guid.NewGuid().ToString("N");
        using var release = new ManualResetEventSlim();
        int builds = 0;
        EnvRegistry.Register(id, (_, _, _) =>
        {
            Interlocked.Increment(ref builds);
            release.Wait(TimeSpan.FromMinutes(2));
            throw new OperationCanceledException("the test is over"); // never writes a bundle into the shared cache
        });
        try
        {
            var server = await TestServer.Start(drainGrace: 5); // the stop drains: the loop runs on and answers it
            var waiting = Task.Run(() => new RemoteVectorEnv(server.Address, env: id, numEnvs: 1, heartbeat: TimeSpan.Zero,
                connectTimeout: TimeSpan.FromMinutes(1), stepTimeout: TimeSpan.FromMinutes(1)));
            while (Volatile.Read(ref builds) == 0) await Task.Delay(20);
            await server.DisposeAsync();
            var e = await Assert.ThrowsAsync<ServerDrainingException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal("draining", e.Code);
        }
        finally
        {
            release.Set();
        }
    }

    [Fact]
    public async Task A_bundle_build_that_fails_is_the_make_s_error_and_the_next_make_builds_again()
    {
        string id = "test-failing-build-" + Guid.NewGuid().ToString("N");
        int builds = 0;
        EnvRegistry.Register(id, (_, _, _) =>
        {
            Interlocked.Increment(ref builds);
            throw new InvalidOperationException("the disk is full (a test's builder)");
        });
        await using var server = await TestServer.Start();
        for (int attempt = 1; attempt <= 2; attempt++)
        {
            var e = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(server.Address, env: id, numEnvs: 1, heartbeat: TimeSpan.Zero));
            Assert.Equal("invalid_state", e.Code);
            Assert.Contains("the disk is full", e.Message);
            Assert.Equal(attempt, builds);
        }
        Assert.Equal(0, EnvServerProbe.Health(server.Address, TimeSpan.FromSeconds(5)).Sessions);
    }

    [Fact]
    public async Task Makes_that_waited_on_a_failed_build_all_get_its_error_and_no_second_build_runs_for_them()
    {
        // The default env is a registered id whose first build (the server's preload) fails once released. Two makes
        // wait on it: each gets that failure, and neither starts a build of its own (nor runs one inline, blocking the
        // server). A make that comes after it builds again.
        string id = "test-failing-preload-" + Guid.NewGuid().ToString("N");
        using var release = new ManualResetEventSlim();
        int builds = 0;
        EnvRegistry.Register(id, (_, _, _) =>
        {
            Interlocked.Increment(ref builds);
            release.Wait(TimeSpan.FromMinutes(2));
            throw new InvalidOperationException("the disk is full (a test's builder)");
        });
        await using var server = await TestServer.Start(env: id);
        while (Volatile.Read(ref builds) == 0) await Task.Delay(20);
        // Each waiter sends its make, then a health on the same connection: the health's reply proves the server has
        // read the make (one connection's frames arrive in order) and set it aside, before the build is released.
        var waiters = Enumerable.Range(0, 2).Select(_ => RawWire.Connect(server.Address)).ToList();
        try
        {
            foreach (var socket in waiters)
            {
                socket.SendFrame(MessagePack.MessagePackSerializer.Serialize(new Dictionary<string, object> { ["v"] = "1.0", ["id"] = 1, ["op"] = "make" }));
                Assert.True(RawWire.Send(socket, MessagePack.MessagePackSerializer.Serialize(new Dictionary<string, object> { ["v"] = "1.0", ["id"] = 2, ["op"] = "health" })).Ok);
            }
            release.Set();
            foreach (var socket in waiters)
            {
                Assert.True(socket.TryReceiveFrameBytes(TimeSpan.FromSeconds(30), out var frame), "no reply to the make");
                var made = MessagePack.MessagePackSerializer.Deserialize<RlhfGym.Transport.Wire.Reply>(frame);
                Assert.Equal(1, made.Id);
                Assert.Equal("invalid_state", made.Error?.Code);
                Assert.Contains("the disk is full", made.Error!.Message);
            }
        }
        finally
        {
            release.Set();
            waiters.ForEach(w => w.Dispose());
        }
        Assert.Equal(1, builds);
        Assert.Contains("the disk is full", Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(server.Address, numEnvs: 1, heartbeat: TimeSpan.Zero)).Message);
        Assert.Equal(2, builds);
    }

    [Fact]
    public async Task A_make_over_a_limit_is_refused_at_once_and_starts_no_build()
    {
        string id = "test-unbuilt-" + Guid.NewGuid().ToString("N");
        int builds = 0;
        EnvRegistry.Register(id, (_, _, _) =>
        {
            Interlocked.Increment(ref builds);
            throw new InvalidOperationException("never built by this test");
        });
        await using var server = await TestServer.Start(maxSessions: 80);
        var e = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(server.Address, env: id, numEnvs: 100_000, heartbeat: TimeSpan.Zero));
        Assert.Equal("limit_exceeded", e.Code);
        Assert.Contains("num_envs", e.Message);
        await Task.Delay(200);
        Assert.Equal(0, builds);
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
