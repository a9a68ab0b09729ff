using System.Diagnostics;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using RlhfGym.Tests;
using RlhfGym.Transport;
using RlhfGym.Transport.Client;

namespace RlhfGym.Cli.Tests;

/// <summary>`rlhfgym serve` as a real process, stopped the way an orchestrator stops it: SIGTERM.</summary>
public class DrainTests
{
    [Fact]
    public async Task A_sigtermed_server_finishes_the_request_in_flight_then_tells_every_client_it_is_draining()
    {
        using var dir = new TempDir();
        // A wider model than PhraseWorld's, so that one score request lasts long enough to be in flight at the signal.
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 32, seed: 3,
            PhraseWorldModels.Config(1) with { DModel = 256, DFf = 1024, NLayers = 4 });
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var server = ServeProcess.Start(address, ["--env", bundle.Directory, "--device", "cpu", "--drain-grace", "30"]);
        var ready = CliRunner.Run("health", "--address", address, "--json");
        Assert.True(ready.ExitCode == 0, ready.Describe());
        Assert.True((bool)ready.LastJson()["ready"]!);

        var scorer = new RemoteVectorEnv(address, numEnvs: 2, heartbeat: TimeSpan.Zero);
        var stepper = new RemoteVectorEnv(address, numEnvs: 3, heartbeat: TimeSpan.Zero);
        var prompts = scorer.Reset(seed: 1).Prompts;
        stepper.Reset(seed: 2);
        var random = new Random(4);
        int vocab = scorer.Spec.VocabSize, eos = scorer.Spec.EosIds[0];
        int pairs = 1024; // the server's max_score_pairs at its default max_num_envs
        var pairPrompts = Enumerable.Range(0, pairs).Select(i => prompts[i % prompts.Length]).ToList();
        var responses = Enumerable.Range(0, pairs).Select(_ => Enumerable.Range(0, 32).Select(_ => NotEos(random, vocab, eos)).ToArray()).ToList();
        var once = Stopwatch.StartNew();
        scorer.Score(pairPrompts, responses);
        var scoreTime = once.Elapsed;

        // The signal lands a third of the way into a second, identical request.
        var inFlight = Task.Run(() => scorer.Score(pairPrompts, responses));
        await Task.Delay(scoreTime / 3);
        server.Terminate();
        Assert.False(inFlight.IsCompleted, $"the score request ({scoreTime.TotalSeconds:F2} s) was over before the signal: nothing was in flight");
        var scored = await inFlight;
        Assert.Equal(pairs, scored.Count);

        // Every later session call, heartbeat ping and make is told to go elsewhere, by name.
        var refused = Assert.Throws<ServerDrainingException>(() => stepper.Step(new int[] { 5, 6, 7 }));
        Assert.Equal("draining", refused.Code);
        Assert.Contains("shutting down", refused.Message);
        Assert.Throws<ServerDrainingException>(() => stepper.Ping());
        Assert.Throws<ServerDrainingException>(() => new RemoteVectorEnv(address, numEnvs: 1, heartbeat: TimeSpan.Zero));
        var health = EnvServerProbe.Health(address, TimeSpan.FromSeconds(5));
        Assert.True(health.Draining);
        Assert.False(health.Ready);
        Assert.Equal(2, health.Sessions);
        Assert.Equal(5, health.SubEnvs);
        var probe = CliRunner.Run("health", "--address", address, "--json");
        Assert.Equal(RlhfGym.Cli.Commands.HealthCommand.NotReady, probe.ExitCode);
        Assert.True((bool)probe.LastJson()["draining"]!);
        Assert.Equal(0, CliRunner.Run("health", "--address", address, "--live", "--json").ExitCode);

        // Closing the last session lets it exit well before the grace period, cleanly.
        scorer.Dispose();
        stepper.Dispose();
        var closed = Stopwatch.StartNew();
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(10)));
        Assert.True(closed.Elapsed < TimeSpan.FromSeconds(5), $"exited {closed.Elapsed.TotalSeconds:F1} s after the last close");
    }

    [Fact]
    public void A_draining_server_exits_after_its_grace_period_even_with_a_session_left_open()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 2);
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var server = ServeProcess.Start(address, ["--env", bundle.Directory, "--device", "cpu", "--drain-grace", "1.5"]);
        var abandoned = new RemoteVectorEnv(address, numEnvs: 1, heartbeat: TimeSpan.Zero); // never closed: a client that hung
        abandoned.Reset(seed: 1);
        var signalled = Stopwatch.StartNew();
        server.Terminate();
        Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(15)));
        Assert.InRange(signalled.Elapsed.TotalSeconds, 1.4, 10);
    }

    [Fact]
    public void Health_names_a_bad_option_and_a_silent_address()
    {
        var silent = CliRunner.Run("health", "--address", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--timeout", "0.2", "--json");
        Assert.Equal(1, silent.ExitCode);
        Assert.Contains("no reply to 'health'", (string)silent.LastJson()["error"]!);
        var timeout = CliRunner.Run("health", "--address", "tcp://127.0.0.1:1", "--timeout", "0", "--json");
        Assert.Equal(1, timeout.ExitCode);
        Assert.Contains("--timeout", (string)timeout.LastJson()["error"]!);
        var grace = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--drain-grace", "-1", "--json");
        Assert.Equal(1, grace.ExitCode);
        Assert.Contains("EnvServer:DrainGraceSeconds must be in 0..3600; got -1", (string)grace.LastJson()["error"]!);
        var window = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--batch-window-ms", "1500", "--json");
        Assert.Equal(1, window.ExitCode);
        Assert.Contains("EnvServer:BatchWindowMs must be in 0..1000 (milliseconds); got 1500", (string)window.LastJson()["error"]!);
        // A timeout too long for a client's heartbeat arithmetic (TimeSpan overflows near 1e12 s) is refused at start.
        var forever = CliRunner.Run("serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--session-timeout", "1e13", "--json");
        Assert.Equal(1, forever.ExitCode);
        Assert.Contains("EnvServer:SessionTimeoutSeconds must be in (0, 86400] seconds; got 10000000000000", (string)forever.LastJson()["error"]!);
        // A setting from the environment that does not convert: the same clear refusal, not a stack dump.
        var typo = ProcessRunner.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll"), "serve", "--bind", $"tcp://127.0.0.1:{LoopbackPort.Free()}", "--json"],
            TimeSpan.FromMinutes(2), environment: new Dictionary<string, string> { ["RLHFGYM_EnvServer__MaxSessions"] = "abc" });
        Assert.Equal(1, typo.ExitCode);
        Assert.Contains("MaxSessions", (string)typo.LastJson()["error"]!);
        Assert.DoesNotContain("   at ", typo.StdErr);
    }

    private static int NotEos(Random random, int vocab, int eos)
    {
        int t;
        do t = random.Next(vocab); while (t == eos);
        return t;
    }
}
