using System.Diagnostics;

namespace RlhfGym.Cli;

/// <summary>`rlhfgym serve` as a child process of this one (the transport benchmark's server), stopped on dispose.</summary>
public sealed class ServeProcess : IDisposable
{
    private readonly Process _process;

    private ServeProcess(Process process) => _process = process;

    /// <summary>What the server logged about its OpenMP wait setting (ServerOpenMpSpin), or null if nothing.</summary>
    public string? OpenMpSetting { get; private set; }

    public static ServeProcess Start(string env, string address, string device, Action<string> progress)
    {
        // This program again: the apphost (rlhfgym), or `dotnet rlhfgym.dll` when started that way.
        string host = Environment.ProcessPath ?? "dotnet", self = typeof(ServeProcess).Assembly.Location;
        var psi = Path.GetFileNameWithoutExtension(host) == "dotnet"
            ? new ProcessStartInfo(host) { ArgumentList = { self } }
            : new ProcessStartInfo(host);
        foreach (var a in new[] { "serve", "--env", env, "--bind", address, "--device", device }) psi.ArgumentList.Add(a);
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
        progress($"server process {process.Id} serving on {address}");
        return new ServeProcess(process) { OpenMpSetting = openMp };
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
