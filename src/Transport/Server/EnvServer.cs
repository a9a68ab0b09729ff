using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Security;

namespace RlhfGym.Transport.Server;

/// <summary>
/// Serves envs over ZeroMQ: a ROUTER socket; each request is [client identity, request frame] and gets exactly one
/// reply [identity, reply frame]. A message with the wrong number of frames is answered with an error when it names
/// a client, else dropped. Runs as a hosted service. On host shutdown (SIGINT/SIGTERM) it drains: no new sessions,
/// session calls answered with error `draining`, and it returns once every session has closed or
/// <see cref="EnvServerOptions.DrainGraceSeconds"/> have passed.
/// </summary>
public sealed class EnvServer(IOptions<EnvServerOptions> options, ILogger<EnvServer> log) : BackgroundService
{
    /// <summary>Set once the socket is bound (tests and callers wait on it).</summary>
    public TaskCompletionSource Bound { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Serve(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Serve(CancellationToken stop)
    {
        var o = options.Value;
        using var router = new RouterSocket();
        router.Options.Linger = TimeSpan.Zero;
        // The frame limit at the socket: ZeroMQ drops a peer that announces a bigger frame before reading it, so an
        // oversized frame is never buffered (the handler's own check would come after the whole frame is in memory).
        router.Options.MaxMsgSize = o.MaxFrameBytes;
        // A start-up failure must reach whoever waits on Bound (serve, tests), whatever its type.
        T Starting<T>(Func<T> step, Func<Exception, Exception>? explain = null)
        {
            try { return step(); }
            catch (Exception e) { Bound.TrySetException(explain?.Invoke(e) ?? e); throw; }
        }
        using var handler = Starting(() => new RequestHandler(o, log, ConfigureCurve(router, o)));
        Starting(() => { router.Bind(o.Bind); return true; },
            e => new IOException($"cannot bind {o.Bind}: {e.Message} (is another server using that port?)", e));
        Bound.TrySetResult();
        handler.StartPreload();
        log.LogInformation("serving envs on {Bind} (default env {Env})", o.Bind, o.Env);
        var lastReclaim = DateTime.UtcNow;
        var lastMessage = DateTime.UtcNow;
        DateTime? drainDeadline = null;
        var message = new NetMQMessage();
        var burst = new List<(byte[] Identity, ReadOnlyMemory<byte> Frame, string Peer)>();
        var waiting = new List<(byte[] Identity, ReadOnlyMemory<byte> Frame, string Peer)>(); // on a bundle build (RequestHandler.Joined)
        while (true)
        {
            if (drainDeadline is null && stop.IsCancellationRequested)
            {
                // The request being handled when the stop came has been answered; every later one is told to go elsewhere.
                drainDeadline = DateTime.UtcNow.AddSeconds(o.DrainGraceSeconds);
                handler.BeginDrain();
                log.LogInformation("draining: no new sessions; {Sessions} sessions have up to {Grace} s to close", handler.SessionCount, o.DrainGraceSeconds);
            }
            if (drainDeadline is { } deadline)
            {
                var now = DateTime.UtcNow;
                if (now >= deadline) break;
                // Done early once no session is left and nothing more is on its way.
                if (handler.SessionCount == 0 && (now - lastMessage).TotalMilliseconds >= 200) break;
            }
            if (router.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(drainDeadline is null ? 100 : 20), ref message))
            {
                lastMessage = DateTime.UtcNow;
                long firstRequest = System.Diagnostics.Stopwatch.GetTimestamp();
                // What else is waiting (and, with a batching window, what arrives within it) is answered together, so the
                // step requests of sessions on one bundle run as one batched forward (RequestHandler.HandleBurst).
                var windowEnd = lastMessage.AddMilliseconds(o.BatchSessions ? o.BatchWindowMs : 0);
                do
                {
                    Take(router, message, handler, burst, waiting);
                    message.Clear();
                    // Wait within the window only while a session sharing models with one in the burst has yet to send.
                    // A wait under 1 ms would make NetMQ spin (it rounds it to 0 ms and never times out): poll instead.
                    var left = windowEnd - DateTime.UtcNow;
                    bool wait = left >= TimeSpan.FromMilliseconds(1) && !handler.BurstComplete;
                    if (burst.Count >= MaxBurst || !router.TryReceiveMultipartMessage(wait ? left : TimeSpan.Zero, ref message)) break;
                } while (true);
                Answer(router, handler, burst, firstRequest);
            }
            if (waiting.Count > 0)
            {
                // The requests whose build is over (or that are refused now, e.g. draining) are answered, in arrival order.
                var ready = waiting.Where(w => handler.CanAnswer(w.Frame)).ToList();
                waiting.RemoveAll(w => ready.Contains(w));
                Answer(router, handler, ready, System.Diagnostics.Stopwatch.GetTimestamp());
            }
            if ((DateTime.UtcNow - lastReclaim).TotalSeconds >= 1)
            {
                handler.ReclaimIdle(DateTime.UtcNow);
                lastReclaim = DateTime.UtcNow;
            }
        }
        Answer(router, handler, waiting, System.Diagnostics.Stopwatch.GetTimestamp()); // still waiting on a build: refused now (draining), not left without a reply
        log.LogInformation("env server on {Bind} stopped; {Sessions} sessions released", o.Bind, handler.SessionCount);
    }

    /// <summary>Requests answered together at most (a bound on one burst's memory and latency).</summary>
    private const int MaxBurst = 256;

    // A well-formed request joins the burst, or waits aside for a bundle build; a message with the wrong number of frames
    // is answered at once when it names a client (identity frame), else dropped.
    private static void Take(RouterSocket router, NetMQMessage message, RequestHandler handler,
        List<(byte[] Identity, ReadOnlyMemory<byte> Frame, string Peer)> burst, List<(byte[] Identity, ReadOnlyMemory<byte> Frame, string Peer)> waiting)
    {
        var identity = message[0].ToByteArray();
        string peer = Convert.ToHexString(identity);
        if (message.FrameCount == 2)
        {
            var request = (identity, (ReadOnlyMemory<byte>)message[1].ToByteArray(), peer);
            (handler.Joined(request.Item2) ? burst : waiting).Add(request);
            return;
        }
        if (identity.Length > 0) router.SendMoreFrame(identity).SendFrame(handler.Handle(ReadOnlyMemory<byte>.Empty, peer));
    }

    // Answer requests together (one batched burst), one reply each to its client, and forget them; the burst's phases
    // (gathered since firstRequest, computed, sent) go to health.
    private static void Answer(RouterSocket router, RequestHandler handler, List<(byte[] Identity, ReadOnlyMemory<byte> Frame, string Peer)> requests,
        long firstRequest)
    {
        if (requests.Count == 0) return;
        long closed = System.Diagnostics.Stopwatch.GetTimestamp();
        var replies = handler.HandleBurst(requests.Select(b => (b.Frame, b.Peer)).ToList());
        long computed = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < requests.Count; i++) router.SendMoreFrame(requests[i].Identity).SendFrame(replies[i]);
        handler.RecordBurst(firstRequest, closed, computed, System.Diagnostics.Stopwatch.GetTimestamp());
        requests.Clear();
    }

    /// <summary>CurveZMQ from the options: encryption with the server's key, and the allow-list check when one is given.</summary>
    private CurveAuth? ConfigureCurve(RouterSocket router, EnvServerOptions o)
    {
        if (o.CurveSecretKeyFile is not { } secretFile) return null;
        var cert = CurveKeys.ReadSecret(secretFile);
        router.Options.CurveServer = true;
        router.Options.CurveCertificate = cert;
        var auth = o.AllowedClientKeysFile is { } allowFile ? new CurveAuth(cert.SecretKey!, CurveKeys.ReadAllowList(allowFile)) : null;
        log.LogInformation("CurveZMQ on: server public key {Key}; {Clients}", cert.PublicKeyZ85,
            auth is null ? "any client that knows it is served" : $"{auth.AllowedCount} allowed client keys");
        return auth;
    }
}
