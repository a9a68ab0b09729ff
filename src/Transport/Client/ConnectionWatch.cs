using NetMQ;
using NetMQ.Monitoring;

namespace RlhfGym.Transport.Client;

/// <summary>
/// Watches one client socket's TCP connection through ZeroMQ's socket monitor, so that a caller waiting for a reply
/// learns at once that the server went away (its process died, its machine vanished: the kernel or ZeroMQ's heartbeat
/// closes the connection) instead of waiting out the step timeout. A reply can never come over a connection that
/// dropped after the request went out: ZeroMQ reconnects, but the request died with the old connection.
/// </summary>
internal sealed class ConnectionWatch : IDisposable
{
    private readonly NetMQMonitor _monitor;
    private readonly Task _running;
    private long _drops, _refusals, _dropsAtReply;
    private volatile bool _connected;
    private long _downSinceTicks = DateTime.UtcNow.Ticks;

    /// <summary>Attach before the socket connects, so the first Connected event is seen.</summary>
    public ConnectionWatch(NetMQSocket socket)
    {
        _monitor = new NetMQMonitor(socket, $"inproc://rlhfgym-watch-{Guid.NewGuid():N}",
            SocketEvents.Connected | SocketEvents.Disconnected | SocketEvents.ConnectRetried);
        _monitor.Connected += (_, _) => _connected = true;
        _monitor.ConnectRetried += (_, _) => Interlocked.Increment(ref _refusals);
        _monitor.Disconnected += (_, _) =>
        {
            Interlocked.Exchange(ref _downSinceTicks, DateTime.UtcNow.Ticks);
            _connected = false;
            Interlocked.Increment(ref _drops);
        };
        _running = _monitor.StartAsync();
    }

    /// <summary>How many times the connection has dropped since the socket was opened.</summary>
    public long Drops => Interlocked.Read(ref _drops);

    /// <summary>
    /// The socket has tried to connect and been refused (or timed out) and is still not connected: the server is not
    /// there. Judged by the retries ZeroMQ reports, not by the absence of a Connected event, which the monitor can miss
    /// when it starts after the connection is made.
    /// </summary>
    public bool Refused => !_connected && Interlocked.Read(ref _refusals) > 0;

    /// <summary>How long the socket has had no connection (zero while it has one).</summary>
    public TimeSpan Down => _connected ? TimeSpan.Zero : DateTime.UtcNow - new DateTime(Interlocked.Read(ref _downSinceTicks), DateTimeKind.Utc);

    /// <summary>A reply arrived, so the connection is up whatever the monitor has said so far.</summary>
    public void SawReply()
    {
        _connected = true;
        _dropsAtReply = Drops;
    }

    /// <summary>
    /// Why a request sent when <see cref="Drops"/> was <paramref name="dropsAtSend"/> can no longer be answered, or null
    /// while it still can: the connection that carried it dropped; or the connection dropped since the last reply and
    /// is still down (the request waits for a server that is gone); or connecting has been refused for longer than
    /// <paramref name="grace"/>.
    /// </summary>
    public string? Lost(long dropsAtSend, TimeSpan grace)
    {
        if (Drops != dropsAtSend || (Drops != _dropsAtReply && !_connected))
            return "the connection dropped while the request waited for its reply (the server process died or restarted)";
        if (Refused && Down > grace)
            return $"no connection for {grace.TotalSeconds:0.#} s (the server is down)";
        return null;
    }

    public void Dispose()
    {
        _monitor.Stop();
        // The monitor fails on its own when its socket is gone first (a connect that threw): nothing is left to watch.
        try { _running.Wait(TimeSpan.FromSeconds(2)); }
        catch (AggregateException) { }
        _monitor.Dispose();
    }
}
