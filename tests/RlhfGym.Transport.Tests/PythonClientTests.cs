using System.Diagnostics;

namespace RlhfGym.Transport.Tests;

/// <summary>The Python client against a real server: the Gymnasium-style contract, heartbeats, session loss and
/// recovery across a server restart, and installation with pip into a fresh venv.</summary>
public class PythonClientTests
{
    [Fact]
    public async Task The_python_client_passes_its_contract_checks()
    {
        await using var server = await TestServer.Start();
        var (ok, stdout, stderr) = PythonClient.Run(Path.Combine(PythonClient.ClientDir, "tests", "check_contract.py"), server.Address);
        Assert.True(ok, stdout + stderr);
        Assert.Contains("checks passed", stdout);
    }

    [Fact]
    public async Task The_python_heartbeat_keeps_a_session_and_a_silent_client_loses_it_once()
    {
        await using var server = await TestServer.Start(sessionTimeout: 2);
        const string Script = """
            import sys, time
            import numpy as np
            from rlhfgym_client import SessionLost, VectorEnv
            with VectorEnv(sys.argv[1], num_envs=1) as env:
                assert env.heartbeat_interval == 0.5, env.heartbeat_interval
                env.reset(seed=1); env.step(np.array([5]))
                time.sleep(6)                      # three session timeouts: the heartbeat keeps the session
                env.step(np.array([5]))
                print("kept", env._heartbeat.beats >= 3)
            with VectorEnv(sys.argv[1], num_envs=1, heartbeat=False) as env:
                env.reset(seed=1)
                time.sleep(4)                      # silent: the server reclaims the session
                lost = 0
                for _ in range(2):
                    try:
                        env.step(np.array([5]))
                    except SessionLost as e:
                        lost += 1
                        assert "reset()" in str(e), e
                env.reset(seed=1)                  # a new session, transparently
                env.step(np.array([5]))
                print("lost", lost)
            """;
        var (ok, stdout, stderr) = PythonClient.Run("-c", Script, server.Address);
        Assert.True(ok, stdout + stderr);
        Assert.Contains("kept True", stdout);
        Assert.Contains("lost 2", stdout); // the first call found out; the second, before reset, is told again
    }

    [Fact]
    public async Task The_python_client_raises_SessionLost_once_after_a_server_restart_and_training_goes_on()
    {
        int port = TestServer.FreePort();
        var server = await TestServer.Start(port);
        const string Script = """
            import sys
            import numpy as np
            from rlhfgym_client import SessionLost, VectorEnv
            env = VectorEnv(sys.argv[1], num_envs=2, heartbeat=False)
            env.reset(seed=1)
            env.step(np.array([5, 6]))
            print("ready", flush=True)
            sys.stdin.readline()                   # the test restarts the server here
            lost, steps = 0, 0
            while steps < 20:
                try:
                    env.step(np.array([5, 6]))
                    steps += 1
                except SessionLost:
                    lost += 1
                    env.reset(seed=2)
            print("lost", lost, "steps", steps, flush=True)
            env.close()
            """;
        var (python, stderr) = await StartInteractive(Script, server.Address);
        using var _ = python;
        await server.DisposeAsync();
        await using var restarted = await TestServer.Start(port);
        await python.StandardInput.WriteLineAsync("go");
        await python.StandardInput.FlushAsync();
        string? result = await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120));
        Assert.True(python.WaitForExit(30_000));
        Assert.True(python.ExitCode == 0, await stderr);
        Assert.Equal("lost 1 steps 20", result);
    }

    [Fact]
    public async Task The_python_client_reads_health_and_raises_ServerDraining_when_the_server_drains()
    {
        var server = await TestServer.Start(drainGrace: 20);
        const string Script = """
            import sys
            import numpy as np
            from rlhfgym_client import RemoteEnvError, ServerDraining, VectorEnv, health
            h = health(sys.argv[1], timeout=5)
            assert set(h) >= {"ready", "draining", "sessions", "max_sessions", "sub_envs", "requests", "uptime_s", "busy", "batched_steps", "step_batches", "batched_resets", "batched_scores", "bursts", "gather_s", "compute_s", "reply_s", "env", "device", "error"}, h
            env = VectorEnv(sys.argv[1], num_envs=2, heartbeat=False)
            env.reset(seed=1)
            h = health(sys.argv[1], timeout=5)
            assert h["sessions"] == 1 and h["sub_envs"] == 2 and not h["draining"] and 0 <= h["busy"] <= 1, h
            assert h["bursts"] >= 3 and h["compute_s"] > 0 and isinstance(h["gather_s"], float) and h["reply_s"] > 0, h
            print("ready", flush=True)
            sys.stdin.readline()                   # the test stops the server here: it drains
            try:
                env.step(np.array([5, 6]))
                print("stepped", flush=True)
            except ServerDraining as e:
                assert e.code == "draining" and "shutting down" in str(e), e
                h = health(sys.argv[1], timeout=5)
                print("draining", h["draining"], h["ready"], flush=True)
            env.close()                            # still answered: the last session closes and the server exits
            try:
                health("tcp://127.0.0.1:1", timeout=0.2)
            except RemoteEnvError as e:
                print("nobody", e.code, flush=True)
            """;
        var (python, stderr) = await StartInteractive(Script, server.Address);
        using var _ = python;
        var stopping = server.DisposeAsync().AsTask(); // drains until the session closes (or 20 s)
        await Task.Delay(500);                         // the server loop notices the stop within 0.1 s
        await python.StandardInput.WriteLineAsync("go");
        await python.StandardInput.FlushAsync();
        Assert.Equal("draining True False", await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Equal("nobody timeout", await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.True(python.WaitForExit(30_000));
        Assert.True(python.ExitCode == 0, await stderr);
        await stopping.WaitAsync(TimeSpan.FromSeconds(10)); // the closed session let it stop well inside its grace
    }

    [Fact]
    public async Task Downloaded_reference_model_gives_the_envs_own_reference_log_probs()
    {
        // A small frame limit, so the model comes in many chunks.
        await using var server = await TestServer.Start(maxFrameBytes: 64 << 10);
        using var dir = new TempDir();
        string script = $$"""
            import json
            import sys
            import numpy as np
            sys.path.insert(0, {{System.Text.Json.JsonSerializer.Serialize(Path.Combine(PythonClient.ClientDir, "tests"))}})
            from llama_numpy import logits
            from rlhfgym_client import VectorEnv
            with VectorEnv(sys.argv[1], num_envs=2) as env:
                paths = env.download_assets(sys.argv[2])
                assert set(paths) >= {"word_tokenizer.json", "reference/config.json", "reference/model.safetensors", "reference/tokenizer.json"}, paths
                # The Hugging Face tokenizer (WordLevel) and the env's word list agree id for id.
                ours = json.load(open(paths["word_tokenizer.json"]))
                words = ours["tokens"]
                hf_tok = json.load(open(paths["reference/tokenizer.json"]))
                assert hf_tok["model"]["type"] == "WordLevel" and hf_tok["pre_tokenizer"]["type"] == "WhitespaceSplit", hf_tok["model"]["type"]
                assert sorted(hf_tok["model"]["vocab"].items(), key=lambda kv: kv[1]) == [(w, i) for i, w in enumerate(words)]
                assert [t["content"] for t in hf_tok["added_tokens"] if t["special"]] == ours["special"], hf_tok["added_tokens"]
                size = [a["size"] for a in env.assets() if a["name"] == "reference/model.safetensors"][0]
                assert size > 2 * env.limits["max_asset_chunk"], (size, env.limits)
                obs, _ = env.reset(seed=3)
                worst = 0.0
                for step in range(4):
                    actions = np.array([5 + step, 9 + step])
                    next_obs, _, terminated, truncated, info = env.step(actions)
                    assert not (terminated.any() or truncated.any())
                    for i in range(2):
                        z = logits(sys.argv[2] + "/reference", obs[i].tolist())[-1]  # next-token logits after obs[i]
                        logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
                        worst = max(worst, abs(logp[actions[i]] - info["ref_logprob"][i]))
                    obs = next_obs
                print("worst", worst)
            """;
        var (ok, stdout, stderr) = PythonClient.Run("-c", script, server.Address, dir.Path);
        Assert.True(ok, stdout + stderr);
        double worst = double.Parse(stdout.Trim().Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(worst < 1e-4, $"reference log-probs differ by {worst}");
    }

    [Fact]
    public async Task The_python_client_installs_with_pip_into_a_fresh_venv()
    {
        using var dir = new TempDir();
        // A copy: pip writes build files next to the sources.
        string source = Path.Combine(dir.Path, "client");
        foreach (var file in Directory.GetFiles(PythonClient.ClientDir, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(PythonClient.ClientDir, file);
            if (relative.Contains("__pycache__")) continue;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(source, relative))!);
            File.Copy(file, Path.Combine(source, relative));
        }
        string venv = Path.Combine(dir.Path, "venv");
        var create = ProcessRunner.Run("/usr/bin/python3", ["-m", "venv", "--system-site-packages", venv], TimeSpan.FromMinutes(2));
        Assert.True(create.ExitCode == 0, create.Describe());
        // Offline: the dependencies come from Debian's packages (system site-packages), setuptools from python3-setuptools.
        var install = ProcessRunner.Run(Path.Combine(venv, "bin", "pip"), ["install", "--no-build-isolation", "--no-index", source], TimeSpan.FromMinutes(3));
        Assert.True(install.ExitCode == 0, install.Describe());
        await using var server = await TestServer.Start();
        // From an unrelated directory and with no PYTHONPATH: the installed package is what gets imported.
        var run = ProcessRunner.Run(Path.Combine(venv, "bin", "python"), [Path.Combine(source, "examples", "random_agent.py"), server.Address, "5", "3"],
            TimeSpan.FromMinutes(2), workingDirectory: dir.Path);
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("\"rewards\"", run.StdOut);
        var where = ProcessRunner.Run(Path.Combine(venv, "bin", "python"), ["-c", "import rlhfgym_client; print(rlhfgym_client.__file__)"], TimeSpan.FromMinutes(1), dir.Path);
        Assert.StartsWith(venv, where.StdOut.Trim());
    }

    // A Python script that talks to the test on stdin/stdout: started, and its first line ("ready") read.
    private static async Task<(Process Python, Task<string> Stderr)> StartInteractive(string script, string address)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["PYTHONPATH"] = PythonClient.ClientDir;
        foreach (var a in new[] { "-c", script, address }) psi.ArgumentList.Add(a);
        var python = Process.Start(psi)!;
        var stderr = python.StandardError.ReadToEndAsync();
        Assert.Equal("ready", await python.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        return (python, stderr);
    }
}
