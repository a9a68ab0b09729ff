namespace RlhfGym.Transport.Tests;

/// <summary>Runs clients/python under Debian's /usr/bin/python3 (python3-zmq, python3-msgpack, python3-numpy,
/// python3-nacl), with the client importable as an installed package would be (PYTHONPATH=clients/python).</summary>
internal static class PythonClient
{
    public static string ClientDir => RepositoryRoot.File("clients", "python");

    public static string Example(string name) => Path.Combine(ClientDir, "examples", name);

    public static (bool Ok, string Stdout, string Stderr) Run(params string[] args) => RunFor(TimeSpan.FromMinutes(2), args);

    /// <summary>As <see cref="Run"/>, for a script that needs longer than two minutes (a training run).</summary>
    public static (bool Ok, string Stdout, string Stderr) RunFor(TimeSpan timeout, params string[] args)
    {
        var r = ProcessRunner.Run("/usr/bin/python3", args, timeout,
            environment: new Dictionary<string, string> { ["PYTHONPATH"] = ClientDir });
        return (r.ExitCode == 0, r.StdOut, r.StdErr);
    }
}
