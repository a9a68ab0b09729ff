using NetMQ;
using RlhfGym.Transport.Compliance;

namespace RlhfGym.Transport.Tests;

/// <summary>
/// The protocol compliance kit against our own server; set RLHFGYM_COMPLIANCE_ADDRESS=tcp://host:port to run it
/// against any other server that speaks docs/protocol.md.
/// </summary>
public class ComplianceTests
{
    public static TheoryData<string> Checks => new(ProtocolCompliance.All.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(Checks))]
    public async Task Server_keeps_the_protocol(string check)
    {
        string? external = Environment.GetEnvironmentVariable("RLHFGYM_COMPLIANCE_ADDRESS");
        await using var server = external is null ? await TestServer.Start() : null;
        ProtocolCompliance.All.Single(c => c.Name == check).Run(external ?? server!.Address);
    }

    [Fact]
    public void The_kit_reports_a_server_that_breaks_the_protocol()
    {
        // A "server" that answers every request with the same fixed map: wrong ids, no error codes.
        int port = TestServer.FreePort();
        using var fake = new NetMQ.Sockets.RouterSocket();
        fake.Bind($"tcp://127.0.0.1:{port}");
        using var poller = new NetMQ.NetMQPoller { fake };
        fake.ReceiveReady += (_, e) =>
        {
            var m = e.Socket.ReceiveMultipartMessage();
            var reply = MessagePack.MessagePackSerializer.Serialize(new Dictionary<string, object> { ["v"] = "1.0", ["id"] = 0, ["ok"] = true });
            e.Socket.SendMoreFrame(m[0].ToByteArray()).SendFrame(reply);
        };
        poller.RunAsync();
        var results = ProtocolCompliance.RunAll($"tcp://127.0.0.1:{port}");
        poller.Stop();
        Assert.All(results, r => Assert.NotNull(r.Failure));
        Assert.Contains(results, r => r.Failure!.Contains("does not match request id"));
    }
}
