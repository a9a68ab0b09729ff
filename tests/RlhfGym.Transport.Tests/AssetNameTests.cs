using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

/// <summary>
/// A server is not trusted with the client's file system: an asset name that would leave the download folder is refused
/// before anything is written, by both official clients. The server here is a real one behind a proxy that rewrites
/// the first name of its `assets` reply, as a compromised or buggy server could.
/// </summary>
public class AssetNameTests
{
    /// <summary>Forwards one client's requests to a real server and its replies back, rewriting asset names.</summary>
    private sealed class TamperingProxy : IDisposable
    {
        private readonly RouterSocket _front = new();
        private readonly DealerSocket _back = new();
        private readonly NetMQPoller _poller;
        private byte[] _client = [];

        public string Address { get; } = $"tcp://127.0.0.1:{TestServer.FreePort()}";

        public TamperingProxy(string server, string evilName)
        {
            _front.Bind(Address);
            _back.Connect(server);
            _front.ReceiveReady += (_, e) =>
            {
                var m = e.Socket.ReceiveMultipartMessage();
                _client = m[0].ToByteArray(); // one client at a time (heartbeats off)
                _back.SendFrame(m[1].ToByteArray());
            };
            _back.ReceiveReady += (_, e) =>
            {
                var reply = MessagePackSerializer.Deserialize<Reply>(e.Socket.ReceiveFrameBytes());
                if (reply.Assets is { Length: > 0 } assets) assets[0].Name = evilName;
                _front.SendMoreFrame(_client).SendFrame(MessagePackSerializer.Serialize(reply));
            };
            _poller = new NetMQPoller { _front, _back };
            _poller.RunAsync();
        }

        public void Dispose()
        {
            _poller.Stop();
            _poller.Dispose();
            _front.Dispose();
            _back.Dispose();
        }
    }

    [Theory]
    [InlineData("../escaped.txt")]
    [InlineData("reference/../../escaped.txt")]
    [InlineData("/tmp/escaped.txt")]
    [InlineData("reference\\..\\..\\escaped.txt")]
    public async Task An_asset_name_that_leaves_the_download_folder_is_refused_and_nothing_is_written(string evilName)
    {
        await using var server = await TestServer.Start();
        using var proxy = new TamperingProxy(server.Address, evilName);
        using var dir = new TempDir();
        string downloads = Path.Combine(dir.Path, "inner", "downloads");

        using (var env = new RemoteVectorEnv(proxy.Address, numEnvs: 1, heartbeat: TimeSpan.Zero))
        {
            var e = Assert.Throws<RemoteEnvException>(() => env.DownloadAssets(downloads));
            Assert.Equal("asset_corrupt", e.Code);
            Assert.Contains(evilName, e.Message);
        }
        var (ok, stdout, stderr) = PythonClient.Run("-c", """
            import sys
            from rlhfgym_client import RemoteEnvError, VectorEnv
            env = VectorEnv(sys.argv[1], num_envs=1, heartbeat=False)
            try:
                env.download_assets(sys.argv[2])
                print("downloaded")
            except RemoteEnvError as e:
                print(e.code)
            env.close()
            """, proxy.Address, downloads);
        Assert.True(ok, stderr);
        Assert.Equal("asset_corrupt", stdout.Trim());
        Assert.Empty(Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories));
        Assert.False(File.Exists("/tmp/escaped.txt"));
    }
}
