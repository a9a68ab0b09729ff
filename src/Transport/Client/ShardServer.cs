namespace RlhfGym.Transport.Client;

/// <summary>One address of a <see cref="ShardedVectorEnv"/> and whether new sub-envs may go there.</summary>
public sealed class ShardServer(string address)
{
    public string Address { get; } = address;

    /// <summary>False once the server was found dead or draining; a later full Reset probes it again.</summary>
    public bool Alive { get; internal set; } = true;

    /// <summary>Why the server was last given up on (null while it is alive).</summary>
    public string? LostReason { get; internal set; }

    /// <summary>Sub-envs of this env on the server now.</summary>
    public int SubEnvs { get; internal set; }

    internal DateTime LastProbe { get; set; } = DateTime.MinValue;
}

/// <summary>Every server of a <see cref="ShardedVectorEnv"/> is gone (code "no_server"); the message lists each and why.</summary>
public sealed class NoServerLeftException(string message) : RemoteEnvException("no_server", message);
