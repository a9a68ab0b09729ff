using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;
using RlhfGym.Transport;

namespace RlhfGym.Cli.Tests;

/// <summary>`keys new`, `serve` with CurveZMQ, and `train --env tcp://…` against a real `rlhfgym serve` process.</summary>
public class RemoteVerbTests
{
    [Fact]
    public void Keys_new_writes_a_pair_and_will_not_overwrite_it_unasked()
    {
        using var dir = new TempDir();
        var r = CliRunner.Run("keys", "new", "--out", dir.File("server"), "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        string publicKey = (string)r.LastJson()["public_key"]!;
        Assert.Equal(40, publicKey.Length);
        Assert.Contains(publicKey, File.ReadAllText(dir.File("server.key")));
        var again = CliRunner.Run("keys", "new", "--out", dir.File("server"), "--json");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("--force", (string)again.LastJson()["error"]!);
        Assert.Equal(0, CliRunner.Run("keys", "new", "--out", dir.File("server"), "--force").ExitCode);
    }

    [Fact]
    public void Serve_names_a_missing_or_bad_key_file()
    {
        using var dir = new TempDir();
        var missing = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--curve-secret-key", dir.File("nope.key_secret"), "--json");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nope.key_secret", (string)missing.LastJson()["error"]!);
        File.WriteAllText(dir.File("bad.key_secret"), "not a key\n");
        var bad = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--curve-secret-key", dir.File("bad.key_secret"), "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("bad.key_secret", (string)bad.LastJson()["error"]!);
        var allowOnly = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--allow-keys", dir.File("allow.txt"), "--json");
        Assert.Equal(1, allowOnly.ExitCode);
        Assert.Contains("CurveSecretKeyFile", (string)allowOnly.LastJson()["error"]!);
    }

    [Fact]
    public void Serve_refuses_an_invalid_setting_at_start_naming_it()
    {
        var r = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--max-sessions", "-1", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("EnvServer:MaxSessions must be > 0; got -1", (string)r.LastJson()["error"]!);
    }

    [Fact]
    public void Train_runs_unchanged_against_a_served_env_over_curve()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 2);
        Assert.Equal(0, CliRunner.Run("keys", "new", "--out", dir.File("server")).ExitCode);
        Assert.Equal(0, CliRunner.Run("keys", "new", "--out", dir.File("client")).ExitCode);
        File.WriteAllText(dir.File("allow.txt"), File.ReadAllText(dir.File("client.key")));
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var server = ServeProcess.Start(address, ["--env", bundle.Directory, "--device", "cpu",
            "--curve-secret-key", dir.File("server.key_secret"), "--allow-keys", dir.File("allow.txt")]);
        // serve shortened the OpenMP spin before anything loaded libtorch (ServerOpenMpSpin).
        Assert.Contains($"{ServerOpenMpSpin.Variable}={ServerOpenMpSpin.ServerValue}", server.OpenMpSetting);
        string reference = Path.Combine(bundle.Directory, "reference");
        var noInit = CliRunner.Run("train", "--env", address, "--out", dir.File("run0"), "--json");
        Assert.Contains("--init", (string)noInit.LastJson()["error"]!);
        var r = CliRunner.Run("train", "--env", address, "--init", reference, "--iterations", "2", "--num-envs", "4", "--out", dir.File("run"),
            "--server-key", dir.File("server.key"), "--client-key", dir.File("client.key_secret"), "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr + r.StdOut);
        var json = r.LastJson();
        Assert.Equal(address, (string)json["env_address"]!);
        Assert.True(File.Exists(Path.Combine(dir.File("run"), "metrics.jsonl")));
        // A client that is not on the allow-list is refused by name.
        Assert.Equal(0, CliRunner.Run("keys", "new", "--out", dir.File("stranger")).ExitCode);
        var refused = CliRunner.Run("train", "--env", address, "--init", reference, "--iterations", "1", "--num-envs", "2", "--out", dir.File("run2"),
            "--server-key", dir.File("server.key"), "--client-key", dir.File("stranger.key_secret"), "--device", "cpu", "--json");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("unauthorized", (string)refused.LastJson()["error"]!);
    }

    [Fact]
    public void Bench_transport_runs_a_server_process_and_reports_the_ratio()
    {
        var r = CliRunner.Run("bench", "transport", "--batch", "4", "--steps", "4", "--repeats", "1", "--pings", "10", "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal("separate process", (string?)json["server"]);
        // What the child `serve` itself logged: it set the short spin before libtorch loaded.
        Assert.Equal($"OpenMP workers spin briefly between requests ({ServerOpenMpSpin.Variable}={ServerOpenMpSpin.ServerValue})", (string?)json["server_openmp_wait"]);
        Assert.True((double)json["remote_vs_inprocess"]! > 0);
        Assert.True((double)json["ping_p99_ms"]! >= (double)json["ping_p50_ms"]!);
        var bad = CliRunner.Run("bench", "transport", "--port", "70000", "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--port", (string)bad.LastJson()["error"]!);
        var stray = CliRunner.Run("bench", "transport", "--eos-rate", "0.1", "--json");
        Assert.Equal(1, stray.ExitCode);
        Assert.Contains("--eos-rate applies with --clients only", (string)stray.LastJson()["error"]!);
    }

    [Fact]
    public void Bench_transport_with_clients_compares_concurrent_clients_with_one_client_of_all_their_envs()
    {
        var r = CliRunner.Run("bench", "transport", "--clients", "3", "--envs-per-client", "2", "--steps", "4", "--repeats", "3", "--eos-rate", "0.3",
            "--batch-window-ms", "5", "--device", "cpu", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal(0.3, (double)json["eos_rate"]!);
        Assert.Equal(5.0, (double)json["batch_window_ms"]!);
        Assert.Contains("--batch-window-ms 5", r.StdErr + r.StdOut); // the serve child got the window (its command line is logged)
        Assert.Equal(3, (int)json["clients"]!);
        Assert.Equal(2, (int)json["envs_per_client"]!);
        Assert.Equal("separate process", (string?)json["server"]);
        var rounds = json["rounds"]!.AsArray().Select(x => (double)x!).Order().ToList();
        Assert.Equal(3, rounds.Count);
        Assert.Equal(rounds[1], (double)json["concurrent_vs_single"]!); // the median of the paired rounds
        // Both sides step the same 6 × 4 tokens: throughput is tokens over each side's seconds.
        Assert.InRange((double)json["single_tokens_per_s"]!, 24 / (double)json["single_s"]! * 0.99 - 1, 24 / (double)json["single_s"]! * 1.01 + 1);
        Assert.InRange((double)json["concurrent_tokens_per_s"]!, 24 / (double)json["concurrent_s"]! * 0.99 - 1, 24 / (double)json["concurrent_s"]! * 1.01 + 1);
        // The server's counters: with a window, some of the 3 clients' steps met in batched forwards of 2 or 3 sessions.
        Assert.InRange((double)json["batched_step_share"]!, 0.01, 1.0);
        Assert.InRange((double)json["sessions_per_batched_step"]!, 2.0, 3.0);
        // Then scoring: both sides score the same 6 episodes.
        double scoreSingle = (double)json["score_single_s"]!, scoreConcurrent = (double)json["score_concurrent_s"]!, scoreRatio = (double)json["score_concurrent_vs_single"]!;
        Assert.True(scoreSingle > 0 && scoreConcurrent > 0 && scoreRatio > 0, json.ToJsonString());
        // And resetting: the 6 sub-envs' new prompts in one request against 3 requests of 2 at once.
        double resetSingle = (double)json["reset_single_s"]!, resetConcurrent = (double)json["reset_concurrent_s"]!, resetRatio = (double)json["reset_concurrent_vs_single"]!;
        Assert.True(resetSingle > 0 && resetConcurrent > 0 && resetRatio > 0, json.ToJsonString());
    }

    [Theory]
    [InlineData("--clients", "0", "--clients")]
    [InlineData("--envs-per-client", "0", "--envs-per-client")]
    [InlineData("--envs-per-client", "5000", "at most 4096")]
    [InlineData("--eos-rate", "0.7", "--eos-rate must be in 0..0.5")]
    [InlineData("--batch-window-ms", "1001", "--batch-window-ms must be in 0..1000")]
    [InlineData("--eos-rate", "-0.1", "--eos-rate must be in 0..0.5")]
    [InlineData("--batch", "32", "--batch applies without --clients only")]
    [InlineData("--pings", "10", "--pings applies without --clients only")]
    public void Bench_transport_with_clients_names_a_bad_option(string option, string value, string expected)
    {
        var options = new Dictionary<string, string> { ["--clients"] = "2", ["--steps"] = "2", ["--repeats"] = "1" };
        options[option] = value;
        var r = CliRunner.Run(["bench", "transport", .. options.SelectMany(p => new[] { p.Key, p.Value }), "--json"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, (string)r.LastJson()["error"]!);
    }

    [Fact]
    public void Bench_transport_without_clients_refuses_envs_per_client_instead_of_ignoring_it()
    {
        var r = CliRunner.Run("bench", "transport", "--envs-per-client", "8", "--steps", "2", "--repeats", "1", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--envs-per-client applies with --clients only", (string)r.LastJson()["error"]!);
    }
}
