using MessagePack;
using NetMQ;
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
        using var socket = ClientSocket.Open(address, curve);
        socket.SendFrame(MessagePackSerializer.Serialize(new Request { Version = ProtocolVersion.Current, Id = 1, Op = "health" }));
        if (!socket.TryReceiveFrameBytes(timeout, out var answer)) throw ClientSocket.Timeout("health", address, timeout, curve);
        var reply = MessagePackSerializer.Deserialize<Reply>(answer);
        if (!reply.Ok) throw ClientSocket.Refusal(address, reply.Error);
        return reply.Health ?? throw new RemoteEnvException(ErrorCodes.BadRequest, $"{address} answered 'health' without a health map (an older server?)");
    }
}
