using System.Net;
using System.Net.Sockets;

namespace RlhfGym.Transport;

/// <summary>A loopback TCP port that is free now (the OS picks it), for benchmark and test servers.</summary>
public static class LoopbackPort
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
