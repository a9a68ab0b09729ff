using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Client;

/// <summary>
/// One `health` request to an env server on a fresh socket (docs/protocol.md): what `rlhfgym health` and a sharded
/// env ask before they send work. Needs no session and no allow-list proof; a CurveZMQ server still needs its key.
/// </summary>
public static class EnvServerProbe
{
    /// <summary>The server's health, or a <see cref="RemoteEnvException"/> with code "timeout" when nothing answers.</summary>
    public static HealthMessage Health(string address, TimeSpan timeout, CurveClientKeys? curve = null)
    {
        using var socket = new DealerSocket();
        socket.Options.Linger = TimeSpan.Zero;
        if (curve is not null)
        {
            socket.Options.CurveServerKey = curve.ServerPublicKey;
            socket.Options.CurveCertificate = curve.Client;
        }
        socket.Connect(address);
        socket.SendFrame(MessagePackSerializer.Serialize(new Request { Version = ProtocolVersion.Current, Id = 1, Op = "health" }));
        if (!socket.TryReceiveFrameBytes(timeout, out var answer))
            throw new RemoteEnvException("timeout", $"no reply to 'health' from {address} within {timeout.TotalSeconds:0.#} s (is `rlhfgym serve` running there?"
                + (curve is null ? " Does it need CurveZMQ keys?)" : " Is the server key right? A wrong CURVE key gets no reply at all.)"));
        var reply = MessagePackSerializer.Deserialize<Reply>(answer);
        if (!reply.Ok) throw new RemoteEnvException(reply.Error?.Code ?? "error", $"{address}: {reply.Error?.Code}: {reply.Error?.Message}");
        return reply.Health ?? throw new RemoteEnvException(ErrorCodes.BadRequest, $"{address} answered 'health' without a health map (an older server?)");
    }
}
