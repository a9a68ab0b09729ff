using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;

namespace RlhfGym.Benchmarks;

/// <summary>
/// bench/peer/decode_step.py run as a child process in its --serve mode, so `bench decode` can alternate its own rounds
/// with PyTorch eager's on the same machine in one run. The script ships inside this assembly and is written next to
/// the config it reads.
/// </summary>
public sealed class PyTorchPeer : IDisposable
{
    public const string ScriptName = "decode_step.py";
    private readonly Process _process;
    private readonly List<string> _stderr = []; // read as it comes, so a chatty child never blocks on a full pipe

    /// <summary>What the script reported when it was ready: torch version, threads, BLAS library, kernels.</summary>
    public JsonObject Info { get; }

    /// <param name="python">The interpreter (e.g. /usr/bin/python3 with Debian's python3-torch).</param>
    /// <param name="environment">KEY=VALUE pairs added to the child's environment (e.g. LD_LIBRARY_PATH for another BLAS).</param>
    public PyTorchPeer(string python, string configPath, int batch, int promptLength, int steps, int threads, string workDir,
        IReadOnlyList<string> environment)
    {
        string script = Path.Combine(workDir, ScriptName);
        WriteScript(script);
        var start = new ProcessStartInfo(python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { script, "--serve", "--config", configPath, "--batch", $"{batch}", "--prompt-len", $"{promptLength}",
                     "--steps", $"{steps}", "--threads", $"{threads}" })
            start.ArgumentList.Add(arg);
        foreach (var pair in environment)
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"--pytorch-env: expected KEY=VALUE, got '{pair}'");
            start.Environment[pair[..eq]] = pair[(eq + 1)..];
        }
        try
        {
            _process = Process.Start(start) ?? throw new InvalidOperationException($"--pytorch: could not start '{python}'");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new ArgumentException($"--pytorch: could not start '{python}': {e.Message}", e);
        }
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (_stderr) _stderr.Add(e.Data);
        };
        _process.BeginErrorReadLine();
        Info = ReadLine("starting");
        if (Info["ready"]?.GetValue<bool>() != true) throw new InvalidOperationException($"--pytorch: the peer script did not start: {Info.ToJsonString()}");
    }

    /// <summary>One round of the peer: every kernel timed once. Returns its JSON line (seconds per kernel, best, best_s).</summary>
    public JsonObject Round()
    {
        _process.StandardInput.WriteLine("round");
        _process.StandardInput.Flush();
        return ReadLine("a round");
    }

    private JsonObject ReadLine(string what)
    {
        string? line = _process.StandardOutput.ReadLine();
        if (line is null)
        {
            _process.WaitForExit(5000);
            string error;
            lock (_stderr) error = string.Join(" | ", _stderr.TakeLast(3));
            throw new InvalidOperationException($"--pytorch: the peer script exited during {what}" + (error.Length > 0 ? $": {error}" : ""));
        }
        return JsonNode.Parse(line) as JsonObject ?? throw new InvalidOperationException($"--pytorch: the peer script printed '{line}', not a JSON object");
    }

    /// <summary>Write the shipped copy of bench/peer/decode_step.py to a file.</summary>
    public static void WriteScript(string path)
    {
        using var source = Assembly.GetExecutingAssembly().GetManifestResourceStream(ScriptName)
            ?? throw new InvalidOperationException($"{ScriptName} is not embedded in {Assembly.GetExecutingAssembly().GetName().Name}");
        using var target = File.Create(path);
        source.CopyTo(target);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.WriteLine("quit");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(10_000)) _process.Kill(entireProcessTree: true);
            }
        }
        catch (IOException) { }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
