using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.PhraseWorld;
using RlhfGym.Transport;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Cli.Tests;

/// <summary>A frame over the server's limit is refused at the socket, before it is read into memory.</summary>
public class FrameLimitTests
{
    private static long ResidentBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    [Fact]
    public void A_200_MB_frame_is_dropped_unbuffered_and_the_server_serves_on()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 3);
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var server = ServeProcess.Start(address, ["--env", bundle.Directory, "--device", "cpu"]);
        byte[] hello = MessagePackSerializer.Serialize(new Request { Version = ProtocolVersion.Current, Id = 1, Op = "hello" });
        using (var warm = new DealerSocket())
        {
            warm.Connect(address);
            warm.SendFrame(hello);
            Assert.True(warm.TryReceiveFrameBytes(TimeSpan.FromSeconds(10), out _), "no reply to hello");
        }
        long before = ResidentBytes(server.ProcessId);

        var huge = new byte[200_000_000];
        using (var sender = new DealerSocket())
        {
            sender.Options.Linger = TimeSpan.FromSeconds(30);
            sender.Connect(address);
            sender.SendFrame(huge);
            Assert.False(sender.TryReceiveFrameBytes(TimeSpan.FromSeconds(5), out _), "an oversized frame got a reply");
        }
        long after = ResidentBytes(server.ProcessId);
        Assert.True(after - before < 50_000_000, $"server RSS grew by {(after - before) / 1e6:F0} MB on a refused 200 MB frame");

        using var client = new DealerSocket();
        client.Connect(address);
        client.SendFrame(hello);
        Assert.True(client.TryReceiveFrameBytes(TimeSpan.FromSeconds(10), out var reply), "the server stopped answering");
        Assert.True(MessagePackSerializer.Deserialize<Reply>(reply).Ok);
    }
}
