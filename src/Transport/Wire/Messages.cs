using MessagePack;

namespace RlhfGym.Transport.Wire;

/// <summary>
/// A request: one MessagePack map in one ZeroMQ frame (docs/protocol.md). Fields an operation does not use are left
/// out (nil). Unknown fields are ignored, so newer clients can add fields without breaking older servers.
/// </summary>
[MessagePackObject]
public sealed class Request
{
    [Key("v")] public string? Version { get; set; }
    [Key("id")] public long Id { get; set; }
    [Key("op")] public string? Op { get; set; }
    [Key("session")] public string? Session { get; set; }
    // hello
    [Key("client")] public string? Client { get; set; }
    // hello and make, when the server has a CurveZMQ allow-list (docs/protocol.md, Authentication)
    [Key("client_key")] public string? ClientKey { get; set; }
    [Key("proof")] public byte[]? Proof { get; set; }
    // make
    [Key("env")] public string? Env { get; set; }
    [Key("num_envs")] public int? NumEnvs { get; set; }
    [Key("autoreset")] public string? Autoreset { get; set; }
    [Key("options")] public Dictionary<string, string>? Options { get; set; }
    // reset
    [Key("seed")] public long? Seed { get; set; }
    [Key("mask")] public bool[]? Mask { get; set; }
    [Key("group_size")] public int? GroupSize { get; set; }
    // step. Token ids travel as 64-bit integers so that an id beyond 32 bits is refused as invalid_argument, naming
    // where it is, rather than failing the whole frame's decoding (Conversions.TokenIds).
    [Key("actions")] public long[]? Actions { get; set; }
    // score
    [Key("prompts")] public long[][]? Prompts { get; set; }
    [Key("responses")] public long[][]? Responses { get; set; }
    // asset (one chunk of one file; "assets" lists them)
    [Key("name")] public string? Name { get; set; }
    [Key("offset")] public long? Offset { get; set; }
    [Key("length")] public int? Length { get; set; }
}

[MessagePackObject]
public sealed class ErrorInfo
{
    [Key("code")] public string Code { get; set; } = "";
    [Key("message")] public string Message { get; set; } = "";
}

/// <summary>A reply: exactly one per request, carrying its id; ok = false carries an error instead of results.</summary>
[MessagePackObject]
public sealed class Reply
{
    [Key("v")] public string Version { get; set; } = ProtocolVersion.Current;
    [Key("id")] public long Id { get; set; }
    [Key("ok")] public bool Ok { get; set; }
    [Key("error")] public ErrorInfo? Error { get; set; }
    // hello
    [Key("server")] public string? Server { get; set; }
    [Key("capabilities")] public string[]? Capabilities { get; set; }
    [Key("limits")] public LimitsMessage? Limits { get; set; }
    // make
    [Key("session")] public string? Session { get; set; }
    [Key("spec")] public SpecMessage? Spec { get; set; }
    // reset
    [Key("prompts")] public int[][]? Prompts { get; set; }
    [Key("prompt_ids")] public string[]? PromptIds { get; set; }
    [Key("prompt_texts")] public string[]? PromptTexts { get; set; }
    // step
    [Key("rewards")] public float[]? Rewards { get; set; }
    [Key("terminated")] public bool[]? Terminated { get; set; }
    [Key("truncated")] public bool[]? Truncated { get; set; }
    [Key("ref_logprob")] public float[]? RefLogProb { get; set; }
    [Key("ref_entropy")] public float[]? RefEntropy { get; set; }
    [Key("segment_ended")] public bool[]? SegmentEnded { get; set; }
    [Key("raw_read")] public float[]? RawRead { get; set; }
    [Key("reset_prompts")] public int[]?[]? ResetPrompts { get; set; }
    [Key("reset_prompt_ids")] public string?[]? ResetPromptIds { get; set; }
    // step (final steps) and score
    [Key("episodes")] public EpisodeMessage?[]? Episodes { get; set; }
    // assets, asset
    [Key("assets")] public AssetMessage[]? Assets { get; set; }
    [Key("name")] public string? Name { get; set; }
    [Key("offset")] public long? Offset { get; set; }
    [Key("size")] public long? Size { get; set; }
    [Key("data")] public byte[]? Data { get; set; }
    // health
    [Key("health")] public HealthMessage? Health { get; set; }
}

/// <summary>One downloadable file of an env: tokenizer files, the reference model in Hugging Face layout.</summary>
[MessagePackObject]
public sealed class AssetMessage
{
    [Key("name")] public string Name { get; set; } = "";
    [Key("size")] public long Size { get; set; }
    [Key("sha256")] public string Sha256 { get; set; } = "";
}

/// <summary>The server's limits, announced in the hello reply so a client can check a frame before sending it (a frame over
/// max_frame_bytes is dropped by the socket unread, with no reply) and pace its heartbeat.</summary>
[MessagePackObject]
public sealed class LimitsMessage
{
    [Key("max_frame_bytes")] public long MaxFrameBytes { get; set; }
    [Key("max_num_envs")] public int MaxNumEnvs { get; set; }
    [Key("max_sessions")] public int MaxSessions { get; set; }
    [Key("max_score_pairs")] public int MaxScorePairs { get; set; }
    [Key("max_asset_chunk")] public int MaxAssetChunk { get; set; }
    [Key("session_timeout_s")] public double SessionTimeoutSeconds { get; set; }
}

[MessagePackObject]
public sealed class SpecMessage
{
    [Key("id")] public string Id { get; set; } = "";
    [Key("num_envs")] public int NumEnvs { get; set; }
    [Key("vocab_size")] public int VocabSize { get; set; }
    [Key("eos_ids")] public int[] EosIds { get; set; } = [];
    [Key("pad_id")] public int PadId { get; set; }
    [Key("max_new_tokens")] public int MaxNewTokens { get; set; }
    [Key("autoreset")] public string Autoreset { get; set; } = "";
    /// <summary>The longest prompt + response the models read (score refuses a longer pair); absent from older servers.</summary>
    [Key("max_seq_len")] public int? MaxSeqLen { get; set; }
    /// <summary>Every env option as text (mode, c_ent, normalizer, interpolation, delivery, missing_eos, …).</summary>
    [Key("options")] public Dictionary<string, string> Options { get; set; } = new();
}

[MessagePackObject]
public sealed class EpisodeMessage
{
    [Key("response")] public int[] Response { get; set; } = [];
    [Key("per_token")] public float[] PerToken { get; set; } = [];
    [Key("online")] public float[] Online { get; set; } = [];
    /// <summary>[start, end] pairs, inclusive, response positions.</summary>
    [Key("segments")] public int[][] Segments { get; set; } = [];
    [Key("raw")] public double[] Raw { get; set; } = [];
    [Key("normalized")] public double[] Normalized { get; set; } = [];
    [Key("entropies")] public float[] Entropies { get; set; } = [];
    [Key("ref_logprobs")] public float[] RefLogProbs { get; set; } = [];
    [Key("terminated")] public bool Terminated { get; set; }
    [Key("truncated")] public bool Truncated { get; set; }
    [Key("gold")] public double? Gold { get; set; }
}

/// <summary>The `health` reply's map: what a load balancer, a Kubernetes probe or a sharded env needs to know.</summary>
[MessagePackObject]
public sealed class HealthMessage
{
    /// <summary>The default env's bundle is built and loads: `make` will not wait on a first build.</summary>
    [Key("ready")] public bool Ready { get; set; }
    /// <summary>The server is shutting down: no new sessions, session calls answered with error `draining`.</summary>
    [Key("draining")] public bool Draining { get; set; }
    [Key("sessions")] public int Sessions { get; set; }
    [Key("max_sessions")] public int MaxSessions { get; set; }
    /// <summary>Sub-envs over all sessions.</summary>
    [Key("sub_envs")] public int SubEnvs { get; set; }
    /// <summary>Requests answered since the server started, this one excluded.</summary>
    [Key("requests")] public long Requests { get; set; }
    [Key("uptime_s")] public double UptimeSeconds { get; set; }
    /// <summary>Fraction of the last 10 s the server spent handling requests, 0..1.</summary>
    [Key("busy")] public double Busy { get; set; }
    /// <summary>Step requests that ran in one batched forward with another session's (cross-session batching).</summary>
    [Key("batched_steps")] public long BatchedSteps { get; set; }
    /// <summary>Batched step forwards, each running the steps of two or more sessions: batched_steps / step_batches is their mean size.</summary>
    [Key("step_batches")] public long StepBatches { get; set; }
    /// <summary>Reset requests whose prompts were prefilled in one forward with another session's.</summary>
    [Key("batched_resets")] public long BatchedResets { get; set; }
    /// <summary>Score requests whose pairs went through the models together with another session's.</summary>
    [Key("batched_scores")] public long BatchedScores { get; set; }
    /// <summary>Bursts answered since the server started: each is the requests it answered together (one at a time).</summary>
    [Key("bursts")] public long Bursts { get; set; }
    /// <summary>Seconds, summed over bursts, from a burst's first request to its closing (the batching window's waits).</summary>
    [Key("gather_s")] public double GatherSeconds { get; set; }
    /// <summary>Seconds, summed over bursts, computing their replies (the forwards included).</summary>
    [Key("compute_s")] public double ComputeSeconds { get; set; }
    /// <summary>Seconds, summed over bursts, handing their replies to the socket.</summary>
    [Key("reply_s")] public double ReplySeconds { get; set; }
    [Key("env")] public string Env { get; set; } = "";
    [Key("device")] public string Device { get; set; } = "";
    /// <summary>Why the default env could not be loaded (then ready is false for good); nil otherwise.</summary>
    [Key("error")] public string? Error { get; set; }
}

/// <summary>Protocol version rules: semver; only a different major version is refused.</summary>
public static class ProtocolVersion
{
    public const string Current = "1.0";

    public static bool Compatible(string? other, out string reason)
    {
        reason = "";
        if (string.IsNullOrEmpty(other)) { reason = "the request carries no protocol version 'v'"; return false; }
        string major = other.Split('.')[0];
        if (major == Current.Split('.')[0]) return true;
        reason = $"protocol version mismatch: client speaks {other}, server speaks {Current} (only the major version must match)";
        return false;
    }
}

/// <summary>Error codes (docs/protocol.md).</summary>
public static class ErrorCodes
{
    public const string BadRequest = "bad_request", UnknownOp = "unknown_op", VersionMismatch = "version_mismatch",
        UnknownSession = "unknown_session", InvalidArgument = "invalid_argument", InvalidState = "invalid_state",
        LimitExceeded = "limit_exceeded", Unauthorized = "unauthorized", Internal = "internal", Draining = "draining";
}
