using MessagePack;
using NetMQ;
using NetMQ.Sockets;

namespace RlhfGym.Transport.Compliance;

/// <summary>A server broke the protocol; the message says which rule and what came back.</summary>
public sealed class ComplianceFailure(string message) : Exception(message);

/// <summary>
/// The protocol compliance kit (in the spirit of dm_env_rpc's compliance tests): checks that any server at an address
/// keeps docs/protocol.md, using only raw DEALER sockets and plain MessagePack maps, never this project's own types.
/// It needs a server whose default env ("make" with env nil) works with two sub-envs.
/// </summary>
public static class ProtocolCompliance
{
    public sealed record Check(string Name, Action<string> Run);

    public static readonly IReadOnlyList<Check> All =
    [
        new("hello returns server and capabilities", Hello),
        new("every reply carries its request id", RepliesCarryIds),
        new("an unknown op is an unknown_op error", UnknownOp),
        new("a different major version is refused naming both", MajorVersion),
        new("a different minor version is served", MinorVersion),
        new("a frame that is not MessagePack gets bad_request", Garbage),
        new("an unknown session is an unknown_session error", UnknownSession),
        new("make, spec, reset, step, score and close follow the contract", Lifecycle),
        new("the same seed gives the same prompts", Seeding),
        new("bad actions are invalid_argument and leave the env as it was", BadActions),
        new("health, when announced, answers its map without a session", Health),
    ];

    public static IReadOnlyList<(string Check, string? Failure)> RunAll(string address) =>
        All.Select(c =>
        {
            try { c.Run(address); return (c.Name, (string?)null); }
            catch (Exception e) { return (c.Name, e is ComplianceFailure ? e.Message : $"{e.GetType().Name}: {e.Message}"); } // a malformed reply fails the check, not the kit
        }).ToList();

    private const string Version = "1.0";

    /// <summary>One client connection: sends maps, returns reply maps.</summary>
    private sealed class Client : IDisposable
    {
        private readonly DealerSocket _socket = new();
        private long _id;

        public Client(string address)
        {
            _socket.Options.Linger = TimeSpan.Zero;
            _socket.Connect(address);
        }

        public void SendRaw(byte[] frame) => _socket.SendFrame(frame);

        public long Send(Dictionary<string, object?> request)
        {
            request.TryAdd("v", Version);
            long id = ++_id;
            request["id"] = id;
            SendRaw(MessagePackSerializer.Serialize(request));
            return id;
        }

        public Dictionary<object, object?> Receive()
        {
            if (!_socket.TryReceiveFrameBytes(TimeSpan.FromSeconds(30), out var frame)) throw new ComplianceFailure("no reply within 30 s");
            try
            {
                return MessagePackSerializer.Deserialize<Dictionary<object, object?>>(frame);
            }
            catch (MessagePackSerializationException e)
            {
                throw new ComplianceFailure($"the reply is not a MessagePack map: {e.Message}");
            }
        }

        /// <summary>Send and expect ok = true with the same id.</summary>
        public Dictionary<object, object?> Ok(Dictionary<string, object?> request)
        {
            long id = Send(request);
            var reply = Receive();
            ExpectId(reply, id);
            if (reply.GetValueOrDefault("ok") is not true)
                throw new ComplianceFailure($"'{request["op"]}' failed: {Describe(reply.GetValueOrDefault("error"))}");
            return reply;
        }

        /// <summary>Send and expect ok = false with this error code and the same id; returns the message.</summary>
        public string Error(Dictionary<string, object?> request, string code)
        {
            long id = Send(request);
            var reply = Receive();
            ExpectId(reply, id);
            return ExpectError(reply, code, $"'{request.GetValueOrDefault("op")}'");
        }

        public void Dispose() => _socket.Dispose();
    }

    private static void ExpectId(Dictionary<object, object?> reply, long id)
    {
        if (Convert.ToInt64(reply.GetValueOrDefault("id") ?? -1L) != id)
            throw new ComplianceFailure($"reply id {reply.GetValueOrDefault("id")} does not match request id {id}");
    }

    private static string ExpectError(Dictionary<object, object?> reply, string code, string what)
    {
        if (reply.GetValueOrDefault("ok") is not false) throw new ComplianceFailure($"{what}: expected an error reply ({code}), got ok");
        if (reply.GetValueOrDefault("error") is not Dictionary<object, object?> error || error.GetValueOrDefault("code") as string != code)
            throw new ComplianceFailure($"{what}: expected error code {code}, got {Describe(reply.GetValueOrDefault("error"))}");
        return error.GetValueOrDefault("message") as string ?? throw new ComplianceFailure($"{what}: the error has no message");
    }

    private static string Describe(object? error) => error is Dictionary<object, object?> e ? $"{e.GetValueOrDefault("code")}: {e.GetValueOrDefault("message")}" : "(no error map)";

    private static object?[] Array(Dictionary<object, object?> map, string key, int? length = null)
    {
        if (map.GetValueOrDefault(key) is not object?[] items) throw new ComplianceFailure($"'{key}' is missing or not an array");
        if (length is { } n && items.Length != n) throw new ComplianceFailure($"'{key}' has {items.Length} entries, expected {n}");
        return items;
    }

    private static long Int(Dictionary<object, object?> map, string key) => map.GetValueOrDefault(key) switch
    {
        null => throw new ComplianceFailure($"'{key}' is missing"),
        var v and (sbyte or byte or short or ushort or int or uint or long or ulong) => Convert.ToInt64(v),
        var v => throw new ComplianceFailure($"'{key}' must be an integer, got {v.GetType().Name}"),
    };

    private static void Hello(string address)
    {
        using var c = new Client(address);
        var reply = c.Ok(new() { ["op"] = "hello", ["client"] = "compliance-kit" });
        if (reply.GetValueOrDefault("server") is not string) throw new ComplianceFailure("hello: 'server' must be a string");
        Array(reply, "capabilities");
    }

    private static void Health(string address)
    {
        using var c = new Client(address);
        if (!Array(c.Ok(new() { ["op"] = "hello", ["client"] = "compliance-kit" }), "capabilities").Contains("health")) return; // optional within 1.x
        if (c.Ok(new() { ["op"] = "health" }).GetValueOrDefault("health") is not Dictionary<object, object?> h)
            throw new ComplianceFailure("health: 'health' must be a map");
        foreach (var key in new[] { "ready", "draining" })
            if (h.GetValueOrDefault(key) is not bool) throw new ComplianceFailure($"health: '{key}' must be a bool");
        foreach (var key in new[] { "sessions", "max_sessions", "sub_envs", "requests" })
            if (Int(h, key) < 0) throw new ComplianceFailure($"health: '{key}' must be ≥ 0");
        foreach (var key in new[] { "uptime_s", "busy" })
            if (h.GetValueOrDefault(key) is not (double or float)) throw new ComplianceFailure($"health: '{key}' must be a float");
        if (Convert.ToDouble(h["busy"]) is < 0 or > 1) throw new ComplianceFailure($"health: 'busy' must be in 0..1, got {h["busy"]}");
        foreach (var key in new[] { "env", "device" })
            if (h.GetValueOrDefault(key) is not string) throw new ComplianceFailure($"health: '{key}' must be a string");
        if (h.GetValueOrDefault("error") is not (null or string)) throw new ComplianceFailure("health: 'error' must be a string or nil");
    }

    private static void RepliesCarryIds(string address)
    {
        using var c = new Client(address);
        var sent = Enumerable.Range(0, 5).Select(_ => c.Send(new() { ["op"] = "hello" })).ToList();
        var got = Enumerable.Range(0, 5).Select(_ => Convert.ToInt64(c.Receive().GetValueOrDefault("id") ?? -1L)).ToList();
        if (!got.Order().SequenceEqual(sent)) throw new ComplianceFailure($"sent ids {string.Join(",", sent)}, replies carried {string.Join(",", got)}");
    }

    private static void UnknownOp(string address)
    {
        using var c = new Client(address);
        c.Error(new() { ["op"] = "no-such-op" }, "unknown_op");
    }

    private static void MajorVersion(string address)
    {
        using var c = new Client(address);
        string message = c.Error(new() { ["op"] = "hello", ["v"] = "99.0" }, "version_mismatch");
        if (!message.Contains("99.0") || !message.Contains("1.")) throw new ComplianceFailure($"version_mismatch must name both versions: '{message}'");
    }

    private static void MinorVersion(string address)
    {
        using var c = new Client(address);
        c.Ok(new() { ["op"] = "hello", ["v"] = "1.99" });
    }

    private static void Garbage(string address)
    {
        using var c = new Client(address);
        c.SendRaw([0xc1, 0xff, 0x00, 0x13]); // 0xc1 is never valid MessagePack
        ExpectError(c.Receive(), "bad_request", "a garbage frame");
        c.Ok(new() { ["op"] = "hello" }); // and the connection still works
    }

    private static void UnknownSession(string address)
    {
        using var c = new Client(address);
        c.Error(new() { ["op"] = "step", ["session"] = "no-such-session", ["actions"] = new[] { 1 } }, "unknown_session");
    }

    private static (Client Client, string Session, Dictionary<object, object?> Spec) Make(string address, string autoreset = "next-step")
    {
        var c = new Client(address);
        try
        {
            return MakeWith(c, autoreset);
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    private static (Client Client, string Session, Dictionary<object, object?> Spec) MakeWith(Client c, string autoreset)
    {
        var made = c.Ok(new() { ["op"] = "make", ["env"] = null, ["num_envs"] = 2, ["autoreset"] = autoreset });
        if (made.GetValueOrDefault("session") is not string session || session.Length == 0) throw new ComplianceFailure("make: 'session' must be a non-empty string");
        if (made.GetValueOrDefault("spec") is not Dictionary<object, object?> spec) throw new ComplianceFailure("make: 'spec' must be a map");
        if (Int(spec, "num_envs") != 2) throw new ComplianceFailure($"spec.num_envs is {spec["num_envs"]}, asked for 2");
        foreach (var key in new[] { "vocab_size", "pad_id", "max_new_tokens" }) Int(spec, key);
        if (Array(spec, "eos_ids").Length == 0) throw new ComplianceFailure("spec.eos_ids is empty");
        if (spec.GetValueOrDefault("options") is not Dictionary<object, object?>) throw new ComplianceFailure("spec.options must be a map");
        return (c, session, spec);
    }

    private static void Lifecycle(string address)
    {
        var (c, session, spec) = Make(address);
        using var _ = c;
        var again = c.Ok(new() { ["op"] = "spec", ["session"] = session });
        if (again.GetValueOrDefault("spec") is not Dictionary<object, object?>) throw new ComplianceFailure("spec: 'spec' must be a map");
        var reset = c.Ok(new() { ["op"] = "reset", ["session"] = session, ["seed"] = 3 });
        Array(reset, "prompts", 2);
        Array(reset, "prompt_ids", 2);
        int eos = (int)Convert.ToInt64(Array(spec, "eos_ids")[0]);
        var step = c.Ok(new() { ["op"] = "step", ["session"] = session, ["actions"] = new[] { eos, eos } });
        foreach (var key in new[] { "rewards", "terminated", "truncated", "segment_ended", "ref_logprob", "ref_entropy", "raw_read", "reset_prompts", "episodes" })
            Array(step, key, 2);
        var terminated = Array(step, "terminated");
        if (terminated.Any(t => t is not true)) throw new ComplianceFailure("an EOS action must terminate its sub-env");
        if (Array(step, "episodes").Any(e => e is not Dictionary<object, object?>)) throw new ComplianceFailure("a finished sub-env's step must carry its episode map");
        var prompts = Array(reset, "prompts").Cast<object?[]>().Select(p => p.Select(Convert.ToInt32).ToArray()).ToArray();
        var score = c.Ok(new() { ["op"] = "score", ["session"] = session, ["prompts"] = prompts, ["responses"] = new[] { new[] { eos }, new[] { eos } } });
        Array(score, "episodes", 2);
        c.Ok(new() { ["op"] = "ping", ["session"] = session });
        c.Ok(new() { ["op"] = "close", ["session"] = session });
        c.Error(new() { ["op"] = "reset", ["session"] = session }, "unknown_session");
    }

    private static void Seeding(string address)
    {
        var (c, session, _) = Make(address);
        using var _c = c;
        string First() => string.Join("|", Array(c.Ok(new() { ["op"] = "reset", ["session"] = session, ["seed"] = 11 }), "prompts")
            .Cast<object?[]>().Select(p => string.Join(",", p)));
        if (First() != First()) throw new ComplianceFailure("two resets with seed 11 gave different prompts");
        c.Ok(new() { ["op"] = "close", ["session"] = session });
    }

    private static void BadActions(string address)
    {
        var (c, session, spec) = Make(address, "disabled");
        using var _c = c;
        c.Ok(new() { ["op"] = "reset", ["session"] = session, ["seed"] = 5 });
        int vocab = (int)Int(spec, "vocab_size");
        c.Error(new() { ["op"] = "step", ["session"] = session, ["actions"] = new[] { vocab, vocab } }, "invalid_argument");
        c.Error(new() { ["op"] = "step", ["session"] = session, ["actions"] = new[] { 1, 1, 1 } }, "invalid_argument");
        int eos = (int)Convert.ToInt64(Array(spec, "eos_ids")[0]);
        // Rejected calls changed nothing: the episodes are still at their first token, so EOS now ends both.
        var step = c.Ok(new() { ["op"] = "step", ["session"] = session, ["actions"] = new[] { eos, eos } });
        if (Array(step, "episodes").Any(e => e is not Dictionary<object, object?> m || Array(m, "response").Length != 1))
            throw new ComplianceFailure("after rejected steps, the first accepted step must still be each episode's first token");
        c.Error(new() { ["op"] = "step", ["session"] = session, ["actions"] = new[] { eos, eos } }, "invalid_state");
        c.Ok(new() { ["op"] = "close", ["session"] = session });
    }
}
