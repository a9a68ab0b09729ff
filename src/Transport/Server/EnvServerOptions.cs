namespace RlhfGym.Transport.Server;

/// <summary>Server settings: from appsettings.json ("EnvServer" section), RLHFGYM_EnvServer__* environment variables,
/// or the command line.</summary>
public sealed class EnvServerOptions
{
    /// <summary>ZeroMQ endpoint; loopback unless told otherwise.</summary>
    public string Bind { get; set; } = "tcp://127.0.0.1:5555";
    /// <summary>The env sessions get when "make" names none (registry id or bundle directory). Required: the server
    /// library knows no world; `rlhfgym serve` defaults it to the built-in world's segment env.</summary>
    public string Env { get; set; } = "";
    public int MaxSessions { get; set; } = 32;
    public int MaxNumEnvs { get; set; } = 256;
    public int MaxFrameBytes { get; set; } = 4 << 20;
    /// <summary>A session with no request for this long is closed and its env released (clients ping to stay alive).</summary>
    public double SessionTimeoutSeconds { get; set; } = 60;
    public string Device { get; set; } = "auto";
    /// <summary>
    /// On shutdown (SIGTERM, host stop) the server drains: it refuses new sessions, answers session calls with error
    /// `draining`, and exits once every session is closed and nothing arrives for 0.2 s, or after this many seconds,
    /// whichever is first. 0 stops at once. Keep it below the orchestrator's kill deadline (Kubernetes: 30 s).
    /// </summary>
    public double DrainGraceSeconds { get; set; } = 25;
    /// <summary>
    /// Cross-session batching: sessions on the same env bundle and max_new_tokens share one copy of the models and one
    /// KV-cache pool, and the step requests of such sessions that are waiting together run as one batched forward. Off,
    /// every session loads its own models and steps alone (the behaviour before 0.9).
    /// </summary>
    public bool BatchSessions { get; set; } = true;
    /// <summary>
    /// With <see cref="BatchSessions"/>: after the first step request of a burst, wait up to this many milliseconds for
    /// more to batch with it. 0 (the default) adds no delay: a batch is whatever is waiting when the server gets to it.
    /// </summary>
    public double BatchWindowMs { get; set; }
    /// <summary>CurveZMQ: the server's secret-key file (`rlhfgym keys new`). Set, the socket only speaks encrypted CURVE.</summary>
    public string? CurveSecretKeyFile { get; set; }
    /// <summary>CurveZMQ allow-list: a file of client public keys, one per line. Set, only those clients are served.</summary>
    public string? AllowedClientKeysFile { get; set; }

    /// <summary>The configuration section these settings are read from, and the prefix of their names in messages.</summary>
    public const string Section = "EnvServer";

    /// <summary>Throws an ArgumentException listing every problem (<see cref="EnvServerOptionsValidator"/>).</summary>
    public void Validate()
    {
        if (EnvServerOptionsValidator.Problems(this) is { Count: > 0 } problems) throw new ArgumentException(string.Join("; ", problems));
    }
}
