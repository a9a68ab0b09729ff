using System.Net;
using System.Net.Sockets;

namespace RlhfGym.Transport;

/// <summary>A loopback TCP port that is free now, for benchmark and test servers.</summary>
public static class LoopbackPort
{
    // Below Linux's default ephemeral range (32768-60999). A server restarted on its port must find it free: a client
    // reconnecting to a dead port in the ephemeral range can be given that very port as its own source port (a TCP
    // self-connect), which then holds the port against the restarted server.
    private const int First = 20000, Last = 32767;

    public static int Free()
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int port = Random.Shared.Next(First, Last + 1);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException) { } // taken: try another
        }
        using var any = new TcpListener(IPAddress.Loopback, 0); // the range is crowded: let the OS pick
        any.Start();
        return ((IPEndPoint)any.LocalEndpoint).Port;
    }
}
