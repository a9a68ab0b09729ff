using NetMQ.Sockets;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Client;

/// <summary>What every client connection to an env server shares: the DEALER socket (CURVE when keys are given), the
/// timeout error and the error reply turned into an exception.</summary>
internal static class ClientSocket
{
    /// <param name="beforeConnect">Runs on the socket before it connects (a <see cref="ConnectionWatch"/> attaches there).</param>
    public static DealerSocket Open(string address, CurveClientKeys? curve, Action<DealerSocket>? beforeConnect = null)
    {
        var socket = new DealerSocket();
        socket.Options.Linger = TimeSpan.Zero;
        if (curve is not null)
        {
            socket.Options.CurveServerKey = curve.ServerPublicKey;
            socket.Options.CurveCertificate = curve.Client;
        }
        beforeConnect?.Invoke(socket);
        try { socket.Connect(address); }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or NetMQ.NetMQException)
        {
            // NetMQ resolves a host name at once: a StatefulSet pod's DNS name exists only while the pod is ready.
            socket.Dispose();
            throw new RemoteEnvException("unreachable", $"cannot connect to {address}: {e.Message} (a host name that does not resolve, or not yet?)");
        }
        return socket;
    }

    public static RemoteEnvException Timeout(string what, string address, TimeSpan timeout, CurveClientKeys? curve) =>
        new("timeout", $"no reply to '{what}' from {address} within {timeout.TotalSeconds:0.#} s (is `rlhfgym serve` running there?"
            + (curve is null ? " Does it need CurveZMQ keys?)" : " Is the server key right? A wrong CURVE key gets no reply at all.)"));

    /// <summary>An error reply as the exception clients throw: <see cref="ServerDrainingException"/> for `draining`.</summary>
    public static RemoteEnvException Refusal(string address, ErrorInfo? error)
    {
        string message = $"{address}: {error?.Code}: {error?.Message}";
        return error?.Code == ErrorCodes.Draining ? new ServerDrainingException(message) : new RemoteEnvException(error?.Code ?? "error", message);
    }
}
