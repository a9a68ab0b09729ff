namespace RlhfGym.Transport.Server;

/// <summary>Server settings: from appsettings.json ("EnvServer" section), RLHFGYM_EnvServer__* environment variables,
/// or the command line.</summary>
public sealed class EnvServerOptions
{
    /// <summary>ZeroMQ endpoint; loopback unless told otherwise.</summary>
    public string Bind { get; set; } = "tcp://127.0.0.1:5555";
    /// <summary>The env sessions get when "make" names none (registry id or bundle directory).</summary>
    public string Env { get; set; } = "PhraseWorld-Segment-v0";
    public int MaxSessions { get; set; } = 32;
    public int MaxNumEnvs { get; set; } = 256;
    public int MaxFrameBytes { get; set; } = 4 << 20;
    /// <summary>A session with no request for this long is closed and its env released (clients ping to stay alive).</summary>
    public double SessionTimeoutSeconds { get; set; } = 60;
    public string Device { get; set; } = "auto";
    /// <summary>CurveZMQ: the server's secret-key file (`rlhfgym keys new`). Set, the socket only speaks encrypted CURVE.</summary>
    public string? CurveSecretKeyFile { get; set; }
    /// <summary>CurveZMQ allow-list: a file of client public keys, one per line. Set, only those clients are served.</summary>
    public string? AllowedClientKeysFile { get; set; }

    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Bind)) throw new ArgumentException("EnvServer:Bind must be an endpoint such as tcp://127.0.0.1:5555");
        if (MaxSessions <= 0 || MaxNumEnvs <= 0 || MaxFrameBytes <= 0 || !(SessionTimeoutSeconds > 0))
            throw new ArgumentException("EnvServer limits (MaxSessions, MaxNumEnvs, MaxFrameBytes, SessionTimeoutSeconds) must be > 0");
        if (AllowedClientKeysFile is not null && CurveSecretKeyFile is null)
            throw new ArgumentException("EnvServer:AllowedClientKeysFile needs EnvServer:CurveSecretKeyFile: an allow-list means nothing on an unencrypted socket");
    }
}
