using MessagePack;
using Microsoft.Extensions.Logging;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Options;
using RlhfGym.Models;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;
using static TorchSharp.torch;

namespace RlhfGym.Transport.Server;

/// <summary>
/// Turns one request frame into exactly one reply, whatever the frame holds: malformed MessagePack, wrong types,
/// unknown operations or sessions and env errors all become error replies (docs/protocol.md), never exceptions.
/// Each session owns its own env instance; with <see cref="EnvServerOptions.BatchSessions"/> the envs on the same bundle
/// share a decoder (one model copy, one KV-cache pool) and <see cref="HandleBurst"/> steps the waiting ones as one batch.
/// </summary>
public sealed class RequestHandler : IDisposable
{
    public static readonly string[] Capabilities = ["reset", "step", "score", "mask", "group_size", "episodes", "ping", "assets", "health"];

    private sealed class Session(TextVectorEnv env, string peer)
    {
        public TextVectorEnv Env { get; } = env;
        public string Peer { get; } = peer;
        /// <summary>The step's token ids, reused every step (the wire sends them as 64-bit integers).</summary>
        public int[] Actions { get; } = new int[env.Spec.NumEnvs];
        /// <summary>The buffer a step's actions are read into; a wrong count gets a fresh array, so the env's own
        /// "expected N actions" error names it.</summary>
        public int[] ActionsFor(int count) => count == Actions.Length ? Actions : new int[count];
        public DateTime LastSeen { get; set; } = DateTime.UtcNow;
        /// <summary>When its last step, reset or score came: a session that sent one a moment ago is expected to send
        /// another soon (BurstComplete).</summary>
        public DateTime LastBatchable { get; set; }
    }

    private readonly EnvServerOptions _o;
    private readonly Device _device;
    private readonly ILogger _log;
    private readonly Dictionary<string, Session> _sessions = new();
    private readonly CurveAuth? _auth;
    private readonly EnvAssets _assets = new();
    private readonly ServerLoad _load = new();
    private readonly EnvDecoders? _decoders;
    private long _batchedSteps, _stepBatches, _batchedResets, _batchedScores;
    private readonly List<Request?> _burstRequests = new(); // the burst's requests as they joined, decoded
    private readonly HashSet<string> _burstSessions = new();
    private readonly HashSet<EnvDecoder> _burstDecoders = new();
    // Step and reset outcomes computed for a burst's batch, read back by that request's own Dispatch (by session id).
    private readonly Dictionary<string, (StepResult? Result, Exception? Error)> _batchedStepOutcomes = new();
    private readonly Dictionary<string, (ResetResult? Result, Exception? Error)> _batchedResetOutcomes = new();
    // Score outcomes computed for a burst's batch, read back by that request's own Dispatch (by the decoded request).
    private readonly Dictionary<Request, (IReadOnlyList<EpisodeRewards>? Result, Exception? Error)> _batchedScoreOutcomes = new(ReferenceEqualityComparer.Instance);
    private Task? _preload; // its outcome is the server's readiness: done = ready, faulted = why not
    private readonly Dictionary<string, Task> _builds = new(); // envs built in the background: the default env's preload, and those requests asked for
    private bool _draining;

    /// <param name="auth">The CurveZMQ allow-list check; null serves every client that can connect.</param>
    public RequestHandler(EnvServerOptions options, ILogger log, CurveAuth? auth = null)
    {
        _auth = auth;
        options.Validate();
        _o = options;
        _device = DeviceSelector.Resolve(options.Device);
        _log = log;
        _decoders = options.BatchSessions ? new EnvDecoders() : null;
    }

    public int SessionCount => _sessions.Count;

    /// <summary>The server answered a burst (EnvServer): its phases' times, for `health`.</summary>
    public void RecordBurst(long firstRequest, long closed, long computed, long sent) => _load.RecordBurst(firstRequest, closed, computed, sent);

    /// <summary>
    /// Builds (first use) and loads the default env's bundle in the background, so that `health` can say when the
    /// server is ready while a first build runs; `make` and `assets` wait for it rather than build a second time.
    /// </summary>
    public void StartPreload()
    {
        if (_preload is not null) return;
        _preload = Task.Run(() =>
        {
            try
            {
                EnvBundle.Load(EnvRegistry.Resolve(_o.Env, p => _log.LogInformation("{Progress}", p), _device));
                _log.LogInformation("ready: default env {Env} loaded", _o.Env);
            }
            catch (Exception e)
            {
                _log.LogError("the default env {Env} cannot be loaded: {Error}", _o.Env, e.Message);
                throw;
            }
        });
        _builds[_o.Env] = _preload; // the default env's build, which its first requests wait on like any other
    }

    // A background build that failed is the error of every request that waited on it (its message says why). It stays
    // recorded until a request that arrives later starts a new build (WaitsForBuild), rather than retry it inline and
    // block the server.
    private void RethrowFailedBuild(string env)
    {
        if (!_builds.TryGetValue(env, out var build) || !build.IsFaulted) return;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(build.Exception!.InnerException ?? build.Exception);
    }

    private void AwaitPreload()
    {
        // A failed preload is not this request's error: its own Resolve reports what is wrong with the env it names.
        try { _preload?.Wait(); }
        catch (AggregateException) { }
    }

    /// <summary>
    /// Shutdown has begun: from now on `make` and the asset calls get error `draining`, and so does every session
    /// call but `close`; `hello`, `ping` without a session and `health` are answered as usual.
    /// </summary>
    public void BeginDrain() => _draining = true;

    /// <summary>
    /// Answers the requests that were waiting together, one reply each, in order. The first step request of each session
    /// whose env shares a decoder with another such request runs in one batched forward with them
    /// (<see cref="TextVectorEnv.StepTogether"/>), and score requests on one decoder are scored in the same full forwards
    /// (<see cref="TextVectorEnv.ScoreTogether"/>); every request is then answered as <see cref="Handle"/> would, in
    /// arrival order, so a session's requests keep their order and each reply is what that session alone would get.
    /// </summary>
    public byte[][] HandleBurst(IReadOnlyList<(ReadOnlyMemory<byte> Frame, string Peer)> requests)
    {
        // Each frame is decoded once: as it joined the burst (Joined), else here.
        var decoded = _burstRequests.Count == requests.Count ? _burstRequests.ToArray() : requests.Select(r => Decode(r.Frame)).ToArray();
        if (_decoders is not null && requests.Count > 1)
        {
            StepAndResetBatches(decoded);
            ScoreBatches(decoded);
        }
        try
        {
            var replies = new byte[requests.Count][];
            for (int i = 0; i < replies.Length; i++) replies[i] = Handle(requests[i].Frame, requests[i].Peer, decoded[i]);
            return replies;
        }
        finally
        {
            _batchedStepOutcomes.Clear();
            _batchedResetOutcomes.Clear();
            _batchedScoreOutcomes.Clear();
            _burstRequests.Clear();
            _burstSessions.Clear();
            _burstDecoders.Clear();
        }
    }

    /// <summary>
    /// A request has come: true when it joins the burst being gathered (see <see cref="BurstComplete"/>); false when it
    /// must wait for a bundle build (<see cref="WaitsForBuild"/>): the server then keeps it aside and hands it to
    /// <see cref="HandleBurst"/> once the build is over, and goes on reading and answering every other request meanwhile.
    /// </summary>
    public bool Joined(ReadOnlyMemory<byte> frame)
    {
        var request = Decode(frame);
        if (WaitsForBuild(request, arriving: true)) return false;
        _burstRequests.Add(request);
        if (_decoders is null || request?.Session is not { } id) return true;
        _burstSessions.Add(id);
        if (_sessions.TryGetValue(id, out var session)) _burstDecoders.Add(session.Env.Decoder);
        return true;
    }

    /// <summary>
    /// Whether answering this request now would block the server on a bundle build: a `make`, `assets` or `asset` of the
    /// default env while its preload runs, or of another registered id whose bundle is not built yet (its build then
    /// starts in the background, once). Such a request is answered when the build is over (done or failed), so that
    /// `health`, heartbeats and every other session's calls are answered meanwhile. A request that will be refused anyway
    /// (wrong version, not authorized, draining, a make over the session or num_envs limit) never waits. A build that failed is the error of the requests that
    /// waited on it; a request <paramref name="arriving"/> after that starts a new one (the cause may have passed).
    /// </summary>
    public bool WaitsForBuild(Request? r, bool arriving)
    {
        if (r is null || r.Op is not ("make" or "assets" or "asset") || _draining) return false;
        if (!ProtocolVersion.Compatible(r.Version, out _) || (_auth is not null && _auth.Check(r.ClientKey, r.Proof) is not null)) return false;
        if (r.Op == "make" && MakeRefusal(r) is not null) return false;
        string env = r.Env ?? _o.Env;
        if (_builds.TryGetValue(env, out var build))
        {
            if (!(arriving && build.IsFaulted)) return !build.IsCompleted; // done (or failed): Dispatch takes it from here
            _builds.Remove(env);
        }
        if (EnvRegistry.IsBuilt(env)) return false;
        _log.LogInformation("building env {Env} in the background for a '{Op}' request", env, r.Op);
        _builds[env] = build = Task.Run(() => EnvRegistry.Resolve(env, p => _log.LogInformation("{Progress}", p), _device));
        return !build.IsCompleted;
    }

    /// <summary>Whether a request set aside by <see cref="Joined"/> can be answered now (its build is over).</summary>
    public bool CanAnswer(ReadOnlyMemory<byte> frame) => !WaitsForBuild(Decode(frame), arriving: false);

    /// <summary>
    /// Whether waiting longer could not add to the batch: every session that shares a decoder with a session in the
    /// burst and is active (its last step, reset or score came less than five batching windows ago) has sent its request. The
    /// window ends early then, so a lone session, or one whose pool-mates are idle, never waits.
    /// </summary>
    public bool BurstComplete
    {
        get
        {
            if (_burstDecoders.Count == 0) return true;
            var since = DateTime.UtcNow.AddMilliseconds(-5 * _o.BatchWindowMs);
            foreach (var (id, session) in _sessions)
                if (!_burstSessions.Contains(id) && session.LastBatchable > since && _burstDecoders.Contains(session.Env.Decoder))
                    return false;
            return true;
        }
    }

    // A session's first request of the burst, when it is a step or a reset, runs with the other sessions' on its
    // decoder (a later request of the same session must wait for it, so only the first can go ahead of the others).
    private void StepAndResetBatches(IReadOnlyList<Request?> requests)
    {
        var seen = new HashSet<string>();
        var steps = new List<(string Session, TextVectorEnv Env, int[] Actions)>();
        var resets = new List<(string Session, TextVectorEnv Env, long? Seed, ResetOptions Options)>();
        foreach (var r in requests)
        {
            if (r?.Session is not { } id || !seen.Add(id)) continue; // only a session's first request of the burst
            if (_draining || !ProtocolVersion.Compatible(r.Version, out _) || !_sessions.TryGetValue(id, out var session)) continue;
            if (r.Op == "reset") resets.Add((id, session.Env, r.Seed, ResetOptionsOf(r)));
            if (r.Op != "step" || r.Actions is null) continue;
            var actions = session.ActionsFor(r.Actions.Length);
            try { Conversions.TokenIds(r.Actions, "actions", actions); }
            catch (ArgumentException) { continue; } // its own Dispatch answers with the error
            steps.Add((id, session.Env, actions));
        }
        var (stepped, stepBatches) = RunBatches(steps, s => s.Env, s => s.Session, _batchedStepOutcomes, "step",
            batch => TextVectorEnv.StepTogether(batch.Select(s => (s.Env, s.Actions)).ToList()));
        _batchedSteps += stepped;
        _stepBatches += stepBatches;
        _batchedResets += RunBatches(resets, s => s.Env, s => s.Session, _batchedResetOutcomes, "reset",
            batch => TextVectorEnv.ResetTogether(batch.Select(s => (s.Env, s.Seed, (ResetOptions?)s.Options)).ToList())).Requests;
    }

    // Score requests of sessions on one decoder are scored in the same full forwards. Scoring changes no env, so every
    // score request of the burst can join, in any order with the session's other requests.
    private void ScoreBatches(IReadOnlyList<Request?> requests)
    {
        var scores = new List<(Request Request, TextVectorEnv Env, int[][] Prompts, int[][] Responses)>();
        foreach (var r in requests)
        {
            if (r is not { Op: "score", Session: { } id, Prompts: { } prompts, Responses: { } responses } || _draining) continue;
            if (!ProtocolVersion.Compatible(r.Version, out _) || prompts.Length > MaxScorePairs || !_sessions.TryGetValue(id, out var session)) continue;
            int[][] p, q;
            try { (p, q) = (Conversions.TokenIds(prompts, "prompts"), Conversions.TokenIds(responses, "responses")); }
            catch (ArgumentException) { continue; } // its own Dispatch answers with the error
            scores.Add((r, session.Env, p, q));
        }
        _batchedScores += RunBatches(scores, s => s.Env, s => s.Request, _batchedScoreOutcomes, "score",
            batch => TextVectorEnv.ScoreTogether(batch.Select(s => (s.Env, (IReadOnlyList<int[]>)s.Prompts, (IReadOnlyList<int[]>)s.Responses)).ToList())).Requests;
    }

    // Runs the items of each decoder that has more than one as one batch and keeps each item's outcome under its key, for
    // its own Dispatch to read (Batched). A batch that fails as a whole (not one request's error: those come back per
    // request) gives every request in it that error, as each would have got alone; the server goes on. Returns how many
    // requests ran batched, and in how many batches.
    private (int Requests, int Batches) RunBatches<TItem, TKey, T>(List<TItem> items, Func<TItem, TextVectorEnv> envOf, Func<TItem, TKey> keyOf,
        Dictionary<TKey, (T? Result, Exception? Error)> outcomes, string op, Func<List<TItem>, IReadOnlyList<(T? Result, Exception? Error)>> run)
        where TKey : notnull where T : class
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        int batched = 0, batches = 0;
        foreach (var group in items.GroupBy(i => envOf(i).Decoder).Where(g => g.Count() > 1))
        {
            var batch = group.ToList();
            IReadOnlyList<(T?, Exception?)> results;
            try { results = run(batch); }
            catch (Exception e)
            {
                _log.LogError(e, "a batched {Op} of {Count} sessions failed; each gets the error", op, batch.Count);
                results = Enumerable.Repeat<(T?, Exception?)>((null, e), batch.Count).ToList();
            }
            for (int i = 0; i < batch.Count; i++) outcomes[keyOf(batch[i])] = results[i];
            batched += batch.Count;
            batches++;
        }
        if (batched > 0) _load.RecordBusy(started);
        return (batched, batches);
    }

    // The outcome a burst's batch computed for this request, if it ran in one: true with its result, or its own error rethrown.
    private static bool Batched<TKey, T>(Dictionary<TKey, (T? Result, Exception? Error)> outcomes, TKey key, out T result)
        where TKey : notnull where T : class
    {
        result = null!;
        if (!outcomes.Remove(key, out var outcome)) return false;
        if (outcome.Error is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        result = outcome.Result!;
        return true;
    }

    private static ResetOptions ResetOptionsOf(Request r) => new() { Mask = r.Mask, GroupSize = r.GroupSize ?? 1 };

    // A burst's look ahead at a request: null when the frame does not decode (Handle answers it with the error).
    private static Request? Decode(ReadOnlyMemory<byte> frame)
    {
        try { return MessagePackSerializer.Deserialize<Request?>(frame, MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData)); }
        catch (MessagePackSerializationException) { return null; }
    }

    public byte[] Handle(ReadOnlyMemory<byte> frame, string peer) => Handle(frame, peer, decoded: null);

    // decoded: the frame as a burst decoded it already; null: decode it here (and report why it does not decode).
    private byte[] Handle(ReadOnlyMemory<byte> frame, string peer, Request? decoded)
    {
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        try { return Answer(frame, peer, decoded); }
        finally { _load.Record(started); }
    }

    private byte[] Answer(ReadOnlyMemory<byte> frame, string peer, Request? decoded)
    {
        long id = 0;
        Reply reply;
        try
        {
            // Frames over max_frame_bytes never get here: EnvServer's socket drops them unread (MaxMsgSize).
            var request = decoded ?? MessagePackSerializer.Deserialize<Request?>(frame, MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData));
            if (request is null)
                reply = Error(0, ErrorCodes.BadRequest, "the frame holds nil, not a request map");
            else
            {
                id = request.Id;
                reply = Dispatch(request, peer);
            }
        }
        catch (MessagePackSerializationException e)
        {
            // The frame did not decode as a request; its id, when readable, still goes back with the error.
            id = RequestId.TryRead(frame) ?? 0;
            reply = Overflowed(e)
                ? Error(id, ErrorCodes.InvalidArgument, $"an integer is out of range for its field: {Innermost(e).Message} (id and seed are 64-bit signed; num_envs and group_size 32-bit; token ids 0..vocab_size-1)")
                : Error(id, ErrorCodes.BadRequest, $"not a valid request map: {Innermost(e).Message}");
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException or KeyNotFoundException
                                      or IOException or FormatException or OverflowException or IndexOutOfRangeException)
        {
            reply = Error(id, e is InvalidOperationException ? ErrorCodes.InvalidState : ErrorCodes.InvalidArgument, e.Message);
        }
        catch (Exception e)
        {
            _log.LogError(e, "request {Id} from {Peer} failed", id, peer);
            reply = Error(id, ErrorCodes.Internal, $"{e.GetType().Name}: {e.Message}");
        }
        return MessagePackSerializer.Serialize(reply);
    }

    private Reply Dispatch(Request r, string peer)
    {
        if (!ProtocolVersion.Compatible(r.Version, out var why)) return Error(r.Id, ErrorCodes.VersionMismatch, why);
        if (_auth is not null && r.Op is "hello" or "make" or "assets" or "asset" && _auth.Check(r.ClientKey, r.Proof) is { } refused)
        {
            _log.LogWarning("refused {Op} from {Peer}: {Why}", r.Op, peer, refused);
            return Error(r.Id, ErrorCodes.Unauthorized, refused);
        }
        switch (r.Op)
        {
            case "hello":
                return new Reply { Id = r.Id, Ok = true, Server = $"rlhfgym {RuntimeInfo.PackageVersion}", Capabilities = Capabilities, Limits = Limits };
            case "ping":
                // Without a session: is the server there? With one: keep it alive, or say it is gone (a heartbeat's question).
                if (r.Session is null) return new Reply { Id = r.Id, Ok = true };
                if (!_sessions.TryGetValue(r.Session, out var live)) return UnknownSession(r);
                if (_draining) break; // a heartbeat learns of the drain like any session call
                live.LastSeen = DateTime.UtcNow;
                return new Reply { Id = r.Id, Ok = true, Session = r.Session };
            case "health":
                return new Reply { Id = r.Id, Ok = true, Health = Health() };
        }
        if (_draining && r.Op is not "close")
            return Error(r.Id, ErrorCodes.Draining, $"this server is shutting down: it takes no new sessions and serves no more '{r.Op}' calls; make the session on another server");
        if (r.Op == "make" && MakeRefusal(r) is { } overLimit) return overLimit;
        if (r.Op is "make" or "assets" or "asset")
        {
            // The server held the request aside until its build was over (WaitsForBuild); a direct caller waits here.
            AwaitPreload();
            RethrowFailedBuild(r.Env ?? _o.Env);
        }
        switch (r.Op)
        {
            case "make":
                return Make(r, peer);
            case "assets":
                return new Reply { Id = r.Id, Ok = true, Assets = AssetsOf(r).Select(a => new AssetMessage { Name = a.Name, Size = a.Size, Sha256 = a.Sha256 }).ToArray() };
            case "asset":
                return AssetChunk(r);
        }
        if (r.Op is not ("spec" or "reset" or "step" or "score" or "close"))
            return Error(r.Id, ErrorCodes.UnknownOp, $"unknown op '{r.Op}' (known: hello, ping, health, make, assets, asset, spec, reset, step, score, close)");
        if (r.Session is null || !_sessions.TryGetValue(r.Session, out var session)) return UnknownSession(r);
        session.LastSeen = DateTime.UtcNow;
        if (r.Op is "step" or "reset" or "score") session.LastBatchable = session.LastSeen;
        var env = session.Env;
        switch (r.Op)
        {
            case "spec":
                return new Reply { Id = r.Id, Ok = true, Session = r.Session, Spec = Conversions.ToMessage(env.Spec) };
            case "reset":
                // Reset with other sessions in this burst (HandleBurst), or alone now.
                if (!Batched(_batchedResetOutcomes, r.Session, out ResetResult reset)) reset = env.Reset(r.Seed, ResetOptionsOf(r));
                return new Reply { Id = r.Id, Ok = true, Prompts = reset.Prompts, PromptIds = reset.PromptIds, PromptTexts = reset.PromptTexts };
            case "step":
                if (r.Actions is null) throw new ArgumentException("step needs 'actions'");
                var reply = new Reply { Id = r.Id, Ok = true };
                // Stepped with other sessions in this burst (HandleBurst), or alone now.
                if (!Batched(_batchedStepOutcomes, r.Session, out StepResult stepped))
                {
                    int[] actions = session.ActionsFor(r.Actions.Length);
                    Conversions.TokenIds(r.Actions, "actions", actions);
                    stepped = env.Step(actions);
                }
                Conversions.Fill(reply, stepped);
                return reply;
            case "score":
                if (r.Prompts is null || r.Responses is null) throw new ArgumentException("score needs 'prompts' and 'responses'");
                if (r.Prompts.Length > MaxScorePairs) return Error(r.Id, ErrorCodes.LimitExceeded, $"at most {MaxScorePairs} pairs per score request");
                // Scored with other sessions' pairs in this burst (HandleBurst), or alone now.
                if (!Batched(_batchedScoreOutcomes, r, out IReadOnlyList<EpisodeRewards> scored))
                    scored = env.Score(Conversions.TokenIds(r.Prompts, "prompts"), Conversions.TokenIds(r.Responses, "responses"));
                return new Reply { Id = r.Id, Ok = true, Episodes = scored.Select(Conversions.ToMessage).ToArray() };
            default: // close
                env.Dispose();
                _sessions.Remove(r.Session!);
                _log.LogInformation("session {Session} closed by {Peer}", r.Session, peer);
                return new Reply { Id = r.Id, Ok = true };
        }
    }

    private HealthMessage Health() => new()
    {
        Ready = _preload is { IsCompletedSuccessfully: true } && !_draining,
        Draining = _draining,
        Sessions = _sessions.Count,
        MaxSessions = _o.MaxSessions,
        SubEnvs = _sessions.Values.Sum(x => x.Actions.Length),
        Requests = _load.Requests,
        UptimeSeconds = Math.Round(_load.UptimeSeconds, 3),
        Busy = Math.Round(_load.BusyFraction(), 4),
        BatchedSteps = _batchedSteps,
        StepBatches = _stepBatches,
        BatchedResets = _batchedResets,
        BatchedScores = _batchedScores,
        Bursts = _load.Bursts,
        GatherSeconds = Math.Round(_load.GatherSeconds, 6),
        ComputeSeconds = Math.Round(_load.ComputeSeconds, 6),
        ReplySeconds = Math.Round(_load.ReplySeconds, 6),
        Env = _o.Env,
        Device = _device.ToString(),
        Error = _preload is { IsFaulted: true } failed ? failed.Exception!.InnerException!.Message : null,
    };

    private IReadOnlyList<EnvAssets.Asset> AssetsOf(Request r) => _assets.For(EnvRegistry.Resolve(r.Env ?? _o.Env, device: _device));

    // One chunk per request keeps every reply under the frame limit, whatever the model's size.
    private Reply AssetChunk(Request r)
    {
        if (r.Name is null) throw new ArgumentException("asset needs 'name' (from the 'assets' list)");
        var assets = AssetsOf(r);
        var asset = assets.FirstOrDefault(a => a.Name == r.Name)
            ?? throw new ArgumentException($"no asset '{r.Name}' (this env has: {string.Join(", ", assets.Select(a => a.Name))})");
        int limit = MaxAssetChunk;
        int length = r.Length ?? limit;
        if (length > limit) throw new ArgumentOutOfRangeException("length", length, $"length must be at most {limit} (max_asset_chunk)");
        long offset = r.Offset ?? 0;
        return new Reply { Id = r.Id, Ok = true, Name = asset.Name, Offset = offset, Size = asset.Size, Data = EnvAssets.Read(asset, offset, length) };
    }

    private int MaxAssetChunk => Math.Max(1, _o.MaxFrameBytes - 4096);

    private static Reply UnknownSession(Request r) =>
        Error(r.Id, ErrorCodes.UnknownSession, $"no session '{r.Session}' on this server (closed, timed out, or the server restarted): make a new one");

    private LimitsMessage Limits => new()
    {
        MaxFrameBytes = _o.MaxFrameBytes,
        MaxNumEnvs = _o.MaxNumEnvs,
        MaxSessions = _o.MaxSessions,
        MaxScorePairs = MaxScorePairs,
        MaxAssetChunk = MaxAssetChunk,
        SessionTimeoutSeconds = _o.SessionTimeoutSeconds,
    };

    private int MaxScorePairs => _o.MaxNumEnvs * 4;

    // A make the server's limits refuse whatever its env: answered without waiting for (or starting) a bundle build.
    private Reply? MakeRefusal(Request r)
    {
        if (_sessions.Count >= _o.MaxSessions) return Error(r.Id, ErrorCodes.LimitExceeded, $"the server holds its maximum of {_o.MaxSessions} sessions");
        int n = r.NumEnvs ?? 1;
        if (n < 1 || n > _o.MaxNumEnvs) return Error(r.Id, ErrorCodes.LimitExceeded, $"num_envs must be in 1..{_o.MaxNumEnvs}, got {n}");
        return null;
    }

    // Dispatch has checked MakeRefusal just before: the limits hold.
    private Reply Make(Request r, string peer)
    {
        int n = r.NumEnvs ?? 1;
        // A bad option is an EnvOptionException (an ArgumentException): invalid_argument, its message naming the key.
        var env = EnvRegistry.Make(r.Env ?? _o.Env, n, d => EnvOptionsCodec.Decode(r.Options, d), Conversions.ParseAutoreset(r.Autoreset), _device, shared: _decoders);
        string id = Guid.NewGuid().ToString("N");
        _sessions[id] = new Session(env, peer);
        _log.LogInformation("session {Session} for {Peer}: {Env} × {N}", id, peer, env.Spec.Id, n);
        return new Reply { Id = r.Id, Ok = true, Session = id, Spec = Conversions.ToMessage(env.Spec) };
    }

    /// <summary>Close sessions idle past the timeout (a dead client's envs are reclaimed).</summary>
    public int ReclaimIdle(DateTime now)
    {
        var dead = _sessions.Where(kv => (now - kv.Value.LastSeen).TotalSeconds > _o.SessionTimeoutSeconds).Select(kv => kv.Key).ToList();
        foreach (var id in dead)
        {
            _log.LogInformation("session {Session} of {Peer} reclaimed after {Timeout} s without a request", id, _sessions[id].Peer, _o.SessionTimeoutSeconds);
            _sessions[id].Env.Dispose();
            _sessions.Remove(id);
        }
        return dead.Count;
    }

    private static Exception Innermost(Exception e) => e.InnerException is { } inner ? Innermost(inner) : e;

    private static bool Overflowed(Exception e) => e is OverflowException || (e.InnerException is { } inner && Overflowed(inner));

    private static Reply Error(long id, string code, string message) => new() { Id = id, Ok = false, Error = new ErrorInfo { Code = code, Message = message } };

    public void Dispose()
    {
        foreach (var s in _sessions.Values) s.Env.Dispose();
        _sessions.Clear();
        _decoders?.Dispose();
        _assets.Dispose();
    }
}
