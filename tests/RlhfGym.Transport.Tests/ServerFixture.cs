using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;
using RlhfGym.Transport.Server;

namespace RlhfGym.Transport.Tests;

/// <summary>A real env server on a free loopback port, serving a small random-weight bundle (or the env given).</summary>
internal sealed class TestServer : IAsyncDisposable
{
    public static readonly Lazy<string> Bundle = new(() =>
    {
        string dir = TempDir.ForProcess("transport-bundle");
        RandomBundle.Write(dir, maxNewTokens: 12, seed: 6);
        return dir;
    });

    private readonly EnvServer _server;
    public string Address { get; }
    public int Port { get; }

    private TestServer(EnvServer server, string address, int port)
    {
        _server = server;
        Address = address;
        Port = port;
    }

    public static int FreePort() => LoopbackPort.Free();

    public static async Task<TestServer> Start(int? port = null, double sessionTimeout = 60, int maxSessions = 80,
        string? curveSecretKeyFile = null, string? allowedClientKeysFile = null, int maxFrameBytes = 4 << 20, string? env = null, double drainGrace = 0,
        bool batchSessions = true, double batchWindowMs = 0)
    {
        int p = port ?? FreePort();
        var options = new EnvServerOptions
        {
            Bind = $"tcp://127.0.0.1:{p}",
            Env = env ?? Bundle.Value,
            SessionTimeoutSeconds = sessionTimeout,
            MaxSessions = maxSessions,
            Device = "cpu",
            CurveSecretKeyFile = curveSecretKeyFile,
            AllowedClientKeysFile = allowedClientKeysFile,
            MaxFrameBytes = maxFrameBytes,
            // Tests stop servers under live sessions to play a crash or a restart: no drain unless a test asks for one.
            DrainGraceSeconds = drainGrace,
            BatchSessions = batchSessions,
            BatchWindowMs = batchWindowMs,
        };
        // NetMQ closes a stopped server's listener on its own I/O thread, a moment later: a restart on the same port
        // (as a supervisor would do) retries the bind for a few seconds.
        for (int attempt = 1; ; attempt++)
        {
            var server = new EnvServer(Options.Create(options), NullLogger<EnvServer>.Instance);
            await server.StartAsync(CancellationToken.None);
            try
            {
                await server.Bound.Task;
                return new TestServer(server, options.Bind, p);
            }
            catch (IOException) when (port is not null && attempt < 50)
            {
                server.Dispose();
                await Task.Delay(100);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.StopAsync(CancellationToken.None);
        _server.Dispose();
    }
}
