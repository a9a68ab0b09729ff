using System.Diagnostics;

namespace RlhfGym.Cli;

/// <summary>`rlhfgym serve` as a child process of this one (the transport benchmark's server), stopped on dispose.</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;

    private ServeProcess(Process process) => _process = process;

    /// <summary>The server's process id (tests read its memory use).</summary>
    public int ProcessId => _process.Id;

    /// <summary>What the server logged about its OpenMP wait setting (ServerOpenMpSpin), or null if nothing.</summary>
    public string? OpenMpSetting { get; private set; }

    public static ServeProcess Start(string env, string address, string device, Action<string> progress) =>
        Start(address, ["--env", env, "--device", device], progress);

    /// <param name="serveArgs">More flags for `rlhfgym serve --bind ADDRESS`.</param>
    public static ServeProcess Start(string address, IEnumerable<string> serveArgs, Action<string>? progress = null)
    {
        // This program again: the rlhfgym apphost, else `dotnet rlhfgym.dll` (started that way, or from a test host).
        string? processPath = Environment.ProcessPath;
        bool apphost = processPath is not null && Path.GetFileNameWithoutExtension(processPath) == "rlhfgym";
        string host = apphost ? processPath! : processPath is not null && Path.GetFileNameWithoutExtension(processPath) == "dotnet" ? processPath : "dotnet";
        var psi = new ProcessStartInfo(host);
        if (!apphost) psi.ArgumentList.Add(typeof(ServeProcess).Assembly.Location);
        foreach (var a in (string[])["serve", "--bind", address, .. serveArgs]) psi.ArgumentList.Add(a);
        psi.RedirectStandardError = true;
        psi.RedirectStandardOutput = true;
        psi.UseShellExecute = false;
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {host} serve");
        var ready = new TaskCompletionSource();
        string? openMp = null;
        var lastLines = new Queue<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lastLines) { lastLines.Enqueue(e.Data); if (lastLines.Count > 5) lastLines.Dequeue(); }
            // The logger's "level: category[id] " prefix is dropped; serve logs this line before it binds.
            if (e.Data.Contains("OpenMP")) openMp ??= e.Data[(e.Data.IndexOf("] ", StringComparison.Ordinal) + 2)..];
            if (e.Data.Contains("serving envs on")) ready.TrySetResult();
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) =>
        {
            lock (lastLines) ready.TrySetException(new InvalidOperationException($"rlhfgym serve exited: {string.Join(" | ", lastLines)}"));
        };
        try
        {
            if (Task.WhenAny(ready.Task, Task.Delay(TimeSpan.FromMinutes(2))).GetAwaiter().GetResult() != ready.Task)
                throw new TimeoutException($"rlhfgym serve did not start on {address} within 2 minutes");
            ready.Task.GetAwaiter().GetResult(); // rethrows "serve exited: …" as itself
        }
        catch
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
            throw;
        }
        progress?.Invoke($"server process {process.Id} serving on {address}: rlhfgym {string.Join(" ", psi.ArgumentList.SkipWhile(a => a != "serve"))}");
        return new ServeProcess(process) { OpenMpSetting = openMp };
    }

    /// <summary>Sends SIGTERM, as Kubernetes and systemd do to stop a service: the server drains, then exits.</summary>
    public void Terminate() => Signal(SigTerm, "SIGTERM");

    /// <summary>SIGKILL: the server dies at once, as a crashed pod or a lost machine does (no drain, no goodbye).</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(5000);
    }

    /// <summary>SIGSTOP: the server freezes with its sockets open, as a hung process does: requests are taken in by the
    /// kernel and go unanswered until <see cref="Resume"/>.</summary>
    public void Pause() => Signal(SigStop, "SIGSTOP");

    /// <summary>SIGCONT after <see cref="Pause"/>: the server goes on with what it had taken in.</summary>
    public void Resume() => Signal(SigCont, "SIGCONT");

    private void Signal(int signal, string name)
    {
        if (Kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"could not send {name} to the server process {_process.Id} (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the server to exit; its exit code, or null when it is still running after <paramref name="timeout"/>.</summary>
    public int? WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout) ? _process.ExitCode : null;

    private const int SigTerm = 15, SigCont = 18, SigStop = 19; // Linux numbers (x86-64 and arm64)

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
