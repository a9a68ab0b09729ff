using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

/// <summary>Talking to a server the way a stranger's client would: raw frames on a DEALER socket.</summary>
internal static class RawWire
{
    /// <summary>Sends one frame and returns the reply (failing the test when none comes within 10 s).</summary>
    public static Reply Send(DealerSocket socket, byte[] frame)
    {
        socket.SendFrame(frame);
        Assert.True(socket.TryReceiveFrameBytes(TimeSpan.FromSeconds(10), out var reply), "no reply");
        return MessagePackSerializer.Deserialize<Reply>(reply);
    }

    public static DealerSocket Connect(string address)
    {
        var socket = new DealerSocket();
        socket.Options.Linger = TimeSpan.Zero;
        socket.Connect(address);
        return socket;
    }
}
