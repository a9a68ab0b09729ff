using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Env.Core;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Client;

/// <summary>The server is gone or answered with an error; the message says which and what to do.</summary>
public sealed class RemoteEnvException(string code, string message) : Exception(message)
{
    public string Code { get; } = code;
}

/// <summary>
/// An <see cref="IVectorEnv"/> served by another process over ZeroMQ (docs/protocol.md): a DEALER socket, one request
/// in flight, replies matched by id. Separate connect and step timeouts. When the server restarts, the session is
/// gone: the next call reconnects, makes a new session and throws <see cref="RemoteEnvException"/> (code
/// "session_lost") so the caller knows to Reset; after that the env works again.
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
    private DealerSocket _socket = null!;
    private string _session = "";
    private long _nextId;
    private StepResult _result = null!;

    public EnvSpec Spec { get; private set; } = null!;
    public string ServerVersion { get; private set; } = "";
    /// <summary>The server's limits from its hello reply (null from a server that does not announce them).</summary>
    public LimitsMessage? ServerLimits { get; private set; }

    public RemoteVectorEnv(string address, string? env = null, int numEnvs = 1, AutoresetMode autoreset = AutoresetMode.NextStep,
        IReadOnlyDictionary<string, string>? options = null, TimeSpan? connectTimeout = null, TimeSpan? stepTimeout = null,
        CurveClientKeys? curve = null)
    {
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
            Connect();
        }
        catch
        {
            _socket?.Dispose();
            throw;
        }
    }

    private void Connect()
    {
        OpenSocket();
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
        Spec = Conversions.FromMessage(made.Spec!);
        _result = new StepResult(Spec.NumEnvs);
    }

    public ResetResult Reset(long? seed = null, ResetOptions? options = null)
    {
        var r = CallWithSession(new Request { Op = "reset", Seed = seed, Mask = options?.Mask, GroupSize = options?.GroupSize }, _stepTimeout);
        return new ResetResult(r.Prompts!, r.PromptIds!, r.PromptTexts!);
    }

    public StepResult Step(ReadOnlySpan<int> actions)
    {
        var r = CallWithSession(new Request { Op = "step", Actions = Conversions.WireIds(actions) }, _stepTimeout);
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

    /// <summary>Keep the session alive while the agent is busy elsewhere (the server reclaims idle sessions).</summary>
    public void Ping() => CallWithSession(new Request { Op = "ping" }, _connectTimeout);

    private Reply CallWithSession(Request request, TimeSpan timeout)
    {
        request.Session = _session;
        try
        {
            return Call(request, timeout, request.Op!);
        }
        catch (RemoteEnvException e) when (e.Code is ErrorCodes.UnknownSession or "timeout")
        {
            // The server restarted or our session was reclaimed: reconnect with a new session, and say so.
            try { Connect(); }
            catch (RemoteEnvException again) { throw new RemoteEnvException("server_gone", $"env server at {_address} is gone: {again.Message}"); }
            throw new RemoteEnvException("session_lost", $"the session at {_address} was lost ({e.Message}); reconnected with a new session: call Reset before stepping");
        }
    }

    private Reply Call(Request request, TimeSpan timeout, string what)
    {
        request.Version = ProtocolVersion.Current;
        request.Id = ++_nextId;
        byte[] frame = MessagePackSerializer.Serialize(request);
        // The server's socket drops a bigger frame unread and never answers: say so here instead of timing out.
        if (ServerLimits is { MaxFrameBytes: > 0 } limits && frame.Length > limits.MaxFrameBytes)
            throw new RemoteEnvException(ErrorCodes.LimitExceeded, $"'{what}' would send a frame of {frame.Length} bytes, over {_address}'s max_frame_bytes of {limits.MaxFrameBytes}: split the request");
        _socket.SendFrame(frame);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_socket.TryReceiveFrameBytes(left, out var answer))
            {
                // A fresh socket: ZeroMQ would otherwise deliver the abandoned reply later.
                OpenSocket();
                throw new RemoteEnvException("timeout", $"no reply to '{what}' from {_address} within {timeout.TotalSeconds:F0} s (is `rlhfgym serve` running there?"
                    + (_curve is null ? " Does it need CurveZMQ keys?)" : " Is the server key right? A wrong CURVE key gets no reply at all.)"));
            }
            var reply = MessagePackSerializer.Deserialize<Reply>(answer);
            if (reply.Id != request.Id) continue; // a reply to an earlier, abandoned request
            if (!reply.Ok) throw new RemoteEnvException(reply.Error?.Code ?? "error", $"{_address}: {reply.Error?.Code}: {reply.Error?.Message}");
            return reply;
        }
    }

    private void OpenSocket()
    {
        _socket?.Dispose();
        _socket = new DealerSocket();
        _socket.Options.Linger = TimeSpan.Zero;
        if (_curve is not null)
        {
            _socket.Options.CurveServerKey = _curve.ServerPublicKey;
            _socket.Options.CurveCertificate = _curve.Client;
        }
        _socket.Connect(_address);
    }

    public void Dispose()
    {
        try
        {
            if (_session.Length > 0) Call(new Request { Op = "close", Session = _session }, TimeSpan.FromSeconds(2), "close");
        }
        catch (RemoteEnvException) { }
        _socket.Dispose();
    }
}
