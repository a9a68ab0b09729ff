using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Env.Core;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Client;

/// <summary>The server answered with an error, or did not answer in time (code "timeout"); the message says which and
/// what to do. Code is the protocol's error code (docs/protocol.md) or the client's own "timeout" / "session_lost".</summary>
public class RemoteEnvException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// The server no longer knows this client's session: it restarted, or reclaimed the session after its idle timeout.
/// Thrown once, by the call that found out (or the first call after the heartbeat found out); the episodes are gone.
/// The next <see cref="RemoteVectorEnv.Reset"/> makes a new session and stepping goes on.
/// </summary>
public sealed class SessionLostException(string message) : RemoteEnvException("session_lost", message);

/// <summary>
/// The server is shutting down (error code `draining`): it takes no new sessions and serves no more calls of this
/// one. Its episodes in flight are lost; make the env again on another server.
/// </summary>
public sealed class ServerDrainingException(string message) : RemoteEnvException("draining", message);

/// <summary>
/// An <see cref="IVectorEnv"/> served by another process over ZeroMQ (docs/protocol.md): a DEALER socket, one request
/// in flight, replies matched by id. Separate connect and step timeouts; after a timeout the socket is replaced (a late
/// reply is never read as a later answer) and the session kept; after a step or reset went unanswered, Step refuses
/// until a full Reset, since the server may have run it. A background heartbeat pings while the agent is busy
/// elsewhere, so the server does not reclaim the session. When the server no longer knows the session (restart,
/// reclaim), the call that finds out throws <see cref="SessionLostException"/>; the next Reset makes a new session.
/// </summary>
public sealed class RemoteVectorEnv : IVectorEnv, IScoringEnv
{
    private readonly string _address;
    private readonly string? _env;
    private readonly int _numEnvs;
    private readonly string _autoreset;
    private readonly Dictionary<string, string>? _options;
    private readonly TimeSpan _connectTimeout, _stepTimeout;
    private readonly CurveClientKeys? _curve;
    private readonly TimeSpan? _heartbeatSetting;
    private Thread? _heartbeat;
    private readonly ManualResetEventSlim _stopping = new();
    private volatile string? _lostReason; // set by the heartbeat when the server says the session is gone
    private string? _outcomeUnknown; // a step or reset that got no reply: the server may have run it (Step refuses until a full Reset)
    private long _lastActivityTicks = DateTime.UtcNow.Ticks;
    private DealerSocket _socket = null!;
    private readonly bool _failFast;
    private ConnectionWatch? _watch; // failFast only
    private volatile string _session = "";
    private long _nextId;
    private StepResult _result = null!;
    private long[] _wireActions = []; // the step's token ids as the wire sends them, reused every step

    public EnvSpec Spec { get; private set; } = null!;
    public string ServerVersion { get; private set; } = "";
    /// <summary>The server's limits from its hello reply (null from a server that does not announce them).</summary>
    public LimitsMessage? ServerLimits { get; private set; }
    /// <summary>Idle time after which the heartbeat pings; null when there is no heartbeat.</summary>
    public TimeSpan? HeartbeatInterval { get; private set; }
    /// <summary>Pings the heartbeat has had answered (for tests and diagnostics).</summary>
    public int HeartbeatsAnswered => _beats;
    private volatile int _beats;

    public RemoteVectorEnv(string address, string? env = null, int numEnvs = 1, AutoresetMode autoreset = AutoresetMode.NextStep,
        IReadOnlyDictionary<string, string>? options = null, TimeSpan? connectTimeout = null, TimeSpan? stepTimeout = null,
        CurveClientKeys? curve = null, TimeSpan? heartbeat = null)
        : this(address, env, numEnvs, autoreset, options, connectTimeout, stepTimeout, curve, heartbeat, failFast: false)
    {
    }

    /// <param name="failFast">A shard of a <see cref="ShardedVectorEnv"/>: a dropped connection fails the call at once
    /// (code "disconnected", <see cref="ConnectionWatch"/>), and a failed call is not followed by a ping to tell a
    /// restart from a dead server: the sharded env moves the sub-envs either way.</param>
    internal RemoteVectorEnv(string address, string? env, int numEnvs, AutoresetMode autoreset,
        IReadOnlyDictionary<string, string>? options, TimeSpan? connectTimeout, TimeSpan? stepTimeout,
        CurveClientKeys? curve, TimeSpan? heartbeat, bool failFast)
    {
        _failFast = failFast;
        _heartbeatSetting = heartbeat;
        _curve = curve;
        _address = address;
        _env = env;
        _numEnvs = numEnvs;
        _autoreset = autoreset == AutoresetMode.NextStep ? "next-step" : "disabled";
        _options = options?.ToDictionary(kv => kv.Key, kv => kv.Value);
        _connectTimeout = connectTimeout ?? TimeSpan.FromSeconds(10);
        _stepTimeout = stepTimeout ?? TimeSpan.FromSeconds(60);
        try
        {
            OpenSocket();
            MakeSession();
        }
        catch
        {
            _watch?.Dispose();
            _socket?.Dispose();
            throw;
        }
        StartHeartbeat();
    }

    /// <param name="heartbeat">null: every session_timeout/4 (at least 0.5 s) of idleness; zero: no heartbeat.</param>
    private void StartHeartbeat()
    {
        // Clamped: a server that announces an absurd (or NaN) timeout must not make TimeSpan overflow here.
        double quarter = (ServerLimits?.SessionTimeoutSeconds ?? 60) / 4;
        var interval = _heartbeatSetting ?? TimeSpan.FromSeconds(double.IsFinite(quarter) ? Math.Clamp(quarter, 0.5, 21600) : 15);
        if (interval <= TimeSpan.Zero) return;
        HeartbeatInterval = interval;
        _heartbeat = new Thread(() => Beat(interval)) { IsBackground = true, Name = "rlhfgym-heartbeat" };
        _heartbeat.Start();
    }

    // Its own socket: NetMQ sockets belong to one thread. A ping only when the link has been idle for the interval.
    private void Beat(TimeSpan interval)
    {
        var socket = NewSocket();
        long id = 0, lastPing = 0;
        try
        {
            while (!_stopping.Wait(interval / 4))
            {
                string session = _session;
                long now = DateTime.UtcNow.Ticks;
                if (session.Length == 0 || _lostReason is not null) continue;
                if (now - Math.Max(Interlocked.Read(ref _lastActivityTicks), lastPing) < interval.Ticks) continue;
                lastPing = now;
                socket.SendFrame(MessagePackSerializer.Serialize(new Request { Version = ProtocolVersion.Current, Id = ++id, Op = "ping", Session = session }));
                if (!ReceiveUnlessStopping(socket, out var frame))
                {
                    if (_stopping.IsSet) break;
                    socket.Dispose(); // unreachable for now: a fresh socket next beat
                    socket = NewSocket();
                    continue;
                }
                var reply = MessagePackSerializer.Deserialize<Reply>(frame);
                _beats++;
                if (!reply.Ok && reply.Error?.Code == ErrorCodes.UnknownSession && _session == session) _lostReason = reply.Error.Message;
            }
        }
        finally { socket.Dispose(); }
    }

    // The reply to a heartbeat ping, waited for in short slices so that a Dispose never waits out the connect timeout.
    private bool ReceiveUnlessStopping(NetMQ.Sockets.DealerSocket socket, out byte[] frame)
    {
        var deadline = DateTime.UtcNow + _connectTimeout;
        frame = [];
        while (!_stopping.IsSet)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) return false;
            if (socket.TryReceiveFrameBytes(left < StopCheck ? left : StopCheck, out var received))
            {
                frame = received;
                return true;
            }
        }
        return false;
    }

    private static readonly TimeSpan StopCheck = TimeSpan.FromMilliseconds(100);

    private void MakeSession()
    {
        var hello = Call(new Request { Op = "hello", Client = "rlhfgym-dotnet", ClientKey = _curve?.ClientKeyZ85, Proof = _curve?.Proof }, _connectTimeout, "connect");
        ServerVersion = hello.Server ?? "";
        ServerLimits = hello.Limits;
        var made = Call(new Request
        {
            Op = "make",
            Env = _env,
            NumEnvs = _numEnvs,
            Autoreset = _autoreset,
            Options = _options,
            ClientKey = _curve?.ClientKeyZ85,
            Proof = _curve?.Proof,
        }, _connectTimeout, "make");
        _session = made.Session!;
        _lostReason = null;
        Spec = Conversions.FromMessage(made.Spec!);
        _result = new StepResult(Spec.NumEnvs);
        _wireActions = new long[Spec.NumEnvs];
    }

    /// <summary>Resets the sub-envs; after a lost session it first makes a new one (hello and make again).</summary>
    public ResetResult Reset(long? seed = null, ResetOptions? options = null)
    {
        bool full = options?.Mask is null || options.Mask.All(m => m);
        // A shard's partial reset cannot start a new session (its first reset must be full): its sharded env moves it instead.
        if (_failFast && !full && (_session.Length == 0 || _lostReason is not null))
            throw new SessionLostException($"the server at {_address} no longer has this shard's session ({_lostReason ?? "lost"}); a partial reset cannot start a new one");
        if (_session.Length == 0 || _lostReason is not null) MakeSession();
        var request = new Request { Op = "reset", Seed = seed, Mask = options?.Mask, GroupSize = options?.GroupSize };
        Reply r;
        try { r = ChangingCall(request); }
        catch (SessionLostException) when (!_failFast || full)
        {
            MakeSession(); // found out by this reset: nothing in flight was lost, so start over silently
            r = ChangingCall(request);
        }
        if (full) _outcomeUnknown = null; // every sub-env starts afresh
        return new ResetResult(r.Prompts!, r.PromptIds!, r.PromptTexts!);
    }

    public StepResult Step(ReadOnlySpan<int> actions)
    {
        if (_outcomeUnknown is { } unanswered)
            throw new RemoteEnvException(ErrorCodes.InvalidState, $"{_address}: {unanswered}; the server may have run it, so its episodes may not be what this client saw: call Reset (every sub-env) before stepping again");
        long[] wire = actions.Length == _wireActions.Length ? _wireActions : new long[actions.Length]; // a wrong count: the server names it
        Conversions.WireIds(actions, wire);
        var r = ChangingCall(new Request { Op = "step", Actions = wire });
        r.Rewards!.CopyTo(_result.Rewards, 0);
        r.Terminated!.CopyTo(_result.Terminated, 0);
        r.Truncated!.CopyTo(_result.Truncated, 0);
        r.RefLogProb!.CopyTo(_result.RefLogProb, 0);
        r.RefEntropy!.CopyTo(_result.RefEntropy, 0);
        r.SegmentEnded!.CopyTo(_result.SegmentEnded, 0);
        r.RawRead!.CopyTo(_result.RawRead, 0);
        for (int b = 0; b < Spec.NumEnvs; b++)
        {
            _result.ResetPrompts[b] = r.ResetPrompts?[b];
            _result.ResetPromptIds[b] = r.ResetPromptIds?[b];
            _result.Episodes[b] = r.Episodes?[b] is { } e ? Conversions.FromMessage(e) : null;
        }
        return _result;
    }

    public IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
    {
        var r = CallWithSession(new Request { Op = "score", Prompts = Conversions.WireIds(prompts), Responses = Conversions.WireIds(responses) }, _stepTimeout);
        return r.Episodes!.Select(e => Conversions.FromMessage(e!)).ToList();
    }

    /// <summary>The env's downloadable files (docs/protocol.md, "Assets"): tokenizer files and the reference (SFT) model in
    /// Hugging Face layout.</summary>
    public IReadOnlyList<AssetMessage> Assets() =>
        Call(new Request { Op = "assets", Env = _env, ClientKey = _curve?.ClientKeyZ85, Proof = _curve?.Proof }, _stepTimeout, "assets").Assets!;

    /// <summary>Downloads every asset into <paramref name="directory"/> in chunks under the frame limit, checks each
    /// against its SHA-256 and writes it to a temp name, then renames it. Returns name → path.</summary>
    public IReadOnlyDictionary<string, string> DownloadAssets(string directory)
    {
        int chunk = ServerLimits?.MaxAssetChunk is > 0 and var c ? c : 1 << 20;
        var paths = new Dictionary<string, string>();
        foreach (var asset in Assets())
        {
            string path = AssetPath(directory, asset.Name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temp = $"{path}.tmp-{Guid.NewGuid():N}";
            try
            {
                Download(asset, temp, chunk);
            }
            catch
            {
                File.Delete(temp); // nothing half-written is left behind
                throw;
            }
            File.Move(temp, path, overwrite: true);
            paths[asset.Name] = path;
        }
        return paths;
    }

    // Where an asset goes under `directory`: its name's '/'-separated parts, each a plain file or folder name. A name
    // that would leave the directory (a server's mistake or malice) is refused before anything is written.
    private static string AssetPath(string directory, string name)
    {
        var parts = name.Split('/');
        if (parts.Any(p => p is "" or "." or ".." || p.Contains('\\') || p.Contains('\0')))
            throw new RemoteEnvException("asset_corrupt", $"asset name '{name}' is not a relative path of plain names: refused, nothing written");
        return Path.Combine([directory, .. parts]);
    }

    // One asset into `temp`, in chunks, checked against its announced size and SHA-256 (the caller deletes `temp` on failure).
    private void Download(AssetMessage asset, string temp, int chunk)
    {
        using var file = File.Create(temp);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        long offset = 0;
        do
        {
            var reply = Call(new Request { Op = "asset", Env = _env, Name = asset.Name, Offset = offset, Length = chunk, ClientKey = _curve?.ClientKeyZ85, Proof = _curve?.Proof },
                _stepTimeout, "asset");
            if (reply.Data is not { Length: > 0 } data) break;
            file.Write(data);
            sha.AppendData(data);
            offset += data.Length;
        }
        while (offset < asset.Size);
        string got = Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
        if (offset != asset.Size || got != asset.Sha256)
            throw new RemoteEnvException("asset_corrupt", $"{asset.Name}: got {offset} bytes with SHA-256 {got}, expected {asset.Size} bytes with {asset.Sha256}");
    }

    /// <summary>Is the session alive? Returns, or throws <see cref="SessionLostException"/>. The heartbeat does this in the
    /// background; call it yourself when the heartbeat is off.</summary>
    public void Ping() => CallWithSession(new Request { Op = "ping" }, _connectTimeout);

    private Reply CallWithSession(Request request, TimeSpan timeout)
    {
        if (_lostReason is { } reason) Lose($"the heartbeat found it gone: {reason}");
        if (_session.Length == 0) throw new SessionLostException($"no session at {_address} (it was lost): call Reset");
        request.Session = _session;
        try
        {
            return Call(request, timeout, request.Op!);
        }
        catch (RemoteEnvException e) when (e.Code is ErrorCodes.UnknownSession)
        {
            Lose(e.Message);
            throw; // unreachable: Lose throws
        }
        catch (RemoteEnvException e) when (e.Code is "timeout" && request.Op != "ping" && !_failFast)
        {
            // A restarted server never saw the request (it went into the dead connection): ask the fresh socket whether
            // the session still exists, to tell a restart (SessionLost) from a slow or absent server (the timeout).
            try { Call(new Request { Op = "ping", Session = request.Session }, _connectTimeout, "ping"); }
            catch (RemoteEnvException probe) when (probe.Code is ErrorCodes.UnknownSession) { Lose(probe.Message); }
            catch (RemoteEnvException) { }
            throw;
        }
    }

    // A step or reset whose reply never came may have run on the server: remembered, so that Step refuses until a full Reset.
    private Reply ChangingCall(Request request)
    {
        try { return CallWithSession(request, _stepTimeout); }
        catch (RemoteEnvException e) when (e.Code is "timeout" or "disconnected")
        {
            _outcomeUnknown = $"an earlier '{request.Op}' got no reply ({e.Message})";
            throw;
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Lose(string why)
    {
        _session = "";
        throw new SessionLostException($"the server at {_address} no longer has this client's session ({why}); its episodes are gone: call Reset to get a new session");
    }

    private Reply Call(Request request, TimeSpan timeout, string what)
    {
        request.Version = ProtocolVersion.Current;
        request.Id = ++_nextId;
        byte[] frame = MessagePackSerializer.Serialize(request);
        // The server's socket drops a bigger frame unread and never answers: say so here instead of timing out.
        if (ServerLimits is { MaxFrameBytes: > 0 } limits && frame.Length > limits.MaxFrameBytes)
            throw new RemoteEnvException(ErrorCodes.LimitExceeded, $"'{what}' would send a frame of {frame.Length} bytes, over {_address}'s max_frame_bytes of {limits.MaxFrameBytes}: split the request");
        Interlocked.Exchange(ref _lastActivityTicks, DateTime.UtcNow.Ticks);
        long drops = _watch?.Drops ?? 0;
        _socket.SendFrame(frame);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            // Under a millisecond counts as over: NetMQ rounds such a wait down to 0 ms and then spins without end.
            if (left < TimeSpan.FromMilliseconds(1))
            {
                // A fresh socket: ZeroMQ would otherwise deliver the abandoned reply later.
                OpenSocket();
                throw ClientSocket.Timeout(what, _address, timeout, _curve);
            }
            // Watched, the wait is cut into short slices to look at the connection between them.
            if (!_socket.TryReceiveFrameBytes(_watch is null || left < WatchSlice ? left : WatchSlice, out var answer))
            {
                if (_watch?.Lost(drops, ShardConnectGrace) is { } why)
                {
                    OpenSocket();
                    throw new RemoteEnvException("disconnected", $"'{what}' to {_address}: {why}");
                }
                continue;
            }
            _watch?.SawReply();
            var reply = MessagePackSerializer.Deserialize<Reply>(answer);
            if (reply.Id != request.Id) continue; // a reply to an earlier, abandoned request
            Interlocked.Exchange(ref _lastActivityTicks, DateTime.UtcNow.Ticks);
            if (!reply.Ok) throw ClientSocket.Refusal(_address, reply.Error);
            return reply;
        }
    }

    private static readonly TimeSpan WatchSlice = TimeSpan.FromMilliseconds(50);

    /// <summary>A shard gives up on a server it cannot even connect to after this long (the connect timeout if shorter): a
    /// live server accepts a TCP connection in milliseconds, and every second waited stalls the whole sharded step.</summary>
    private TimeSpan ShardConnectGrace => _connectTimeout < TimeSpan.FromSeconds(2) ? _connectTimeout : TimeSpan.FromSeconds(2);

    private void OpenSocket()
    {
        _watch?.Dispose();
        _socket?.Dispose();
        if (!_failFast)
        {
            _socket = NewSocket();
            return;
        }
        _socket = ClientSocket.Open(_address, _curve, socket =>
        {
            // ZeroMQ's own heartbeat closes a connection whose peer stopped answering (a machine gone without a FIN).
            socket.Options.HeartbeatInterval = TimeSpan.FromSeconds(1);
            socket.Options.HeartbeatTimeout = TimeSpan.FromSeconds(5);
            _watch = new ConnectionWatch(socket);
        });
    }

    private DealerSocket NewSocket() => ClientSocket.Open(_address, _curve);

    public void Dispose() => Release(closeSession: true);

    /// <summary>Lets go of a session whose server is gone without the `close` call that could only time out.</summary>
    internal void Abandon() => Release(closeSession: false);

    private void Release(bool closeSession)
    {
        _stopping.Set();
        // The heartbeat checks the stop at least every 100 ms; should it still be running (a stalled thread), the event
        // is left for the collector rather than disposed under it.
        bool heartbeatStopped = _heartbeat?.Join(TimeSpan.FromSeconds(5)) ?? true;
        try
        {
            if (closeSession && _session.Length > 0) Call(new Request { Op = "close", Session = _session }, TimeSpan.FromSeconds(2), "close");
        }
        catch (RemoteEnvException) { }
        _watch?.Dispose();
        _socket.Dispose();
        if (heartbeatStopped) _stopping.Dispose();
    }
}
