using System.Diagnostics;

namespace RlhfGym.Transport.Tests;

/// <summary>Runs clients/python under Debian's /usr/bin/python3 (python3-zmq, python3-msgpack, python3-numpy,
/// python3-nacl), with the client importable as an installed package would be (PYTHONPATH=clients/python).</summary>
internal static class PythonClient
{
    public static string ClientDir => Path.Combine(RepoRoot(), "clients", "python");

    public static string Example(string name) => Path.Combine(ClientDir, "examples", name);

    public static (bool Ok, string Stdout, string Stderr) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PYTHONPATH"] = ClientDir;
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        bool exited = p.WaitForExit(120_000);
        if (!exited) p.Kill(entireProcessTree: true);
        return (exited && p.ExitCode == 0, stdout, stderr.Result);
    }

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "RlhfGym.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("repository root (RlhfGym.sln) not found above the test binaries");
    }
}
