using System.Collections.Concurrent;
using System.Diagnostics;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Core;
using RlhfGym.Models;
using RlhfGym.PhraseWorld;
using RlhfGym.Tests;
using RlhfGym.Transport;
using RlhfGym.Transport.Client;
using static TorchSharp.torch;

namespace RlhfGym.Cli.Tests;

/// <summary>A sharded env over real `rlhfgym serve` processes, some of them killed with SIGKILL or SIGTERM mid-run.</summary>
public class ShardedEnvTests
{
    /// <summary>Env servers as child processes on one bundle, each killable and restartable at its address.</summary>
    private sealed class Fleet : IDisposable
    {
        private readonly ServeProcess?[] _servers;
        private readonly string _bundle;
        private readonly string[] _extra;

        public string[] Addresses { get; }

        public Fleet(int count, string bundle, params string[] extra)
        {
            _bundle = bundle;
            _extra = extra;
            Addresses = Enumerable.Range(0, count).Select(_ => $"tcp://127.0.0.1:{LoopbackPort.Free()}").ToArray();
            _servers = new ServeProcess?[count];
            for (int i = 0; i < count; i++) Start(i);
        }

        public void Start(int i)
        {
            _servers[i] = ServeProcess.Start(Addresses[i], ["--env", _bundle, "--device", "cpu", .. _extra]);
            var ready = Stopwatch.StartNew();
            while (!EnvServerProbe.Health(Addresses[i], TimeSpan.FromSeconds(5)).Ready)
            {
                Assert.True(ready.Elapsed < TimeSpan.FromMinutes(1), $"{Addresses[i]} not ready after a minute");
                Thread.Sleep(100);
            }
        }

        public void Kill(int i) => _servers[i]!.Kill();

        public IEnumerable<int> ProcessIds => _servers.Select(s => s!.ProcessId);

        public void Terminate(int i) => _servers[i]!.Terminate();

        public int SubEnvs(int i) => EnvServerProbe.Health(Addresses[i], TimeSpan.FromSeconds(5)).SubEnvs;

        public void Dispose()
        {
            foreach (var s in _servers) s?.Dispose();
        }
    }

    [Fact]
    public void Killing_one_of_three_servers_mid_run_loses_only_its_episodes_in_flight_and_the_run_goes_on()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 12, seed: 5);
        using var fleet = new Fleet(3, bundle.Directory);
        var log = new ConcurrentQueue<string>();
        using var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 6, heartbeat: TimeSpan.Zero, log: log.Enqueue);
        Assert.Equal(6, env.Spec.NumEnvs);
        var reset = env.Reset(seed: 11);
        Assert.Equal(6, reset.Prompts.Length);
        Assert.All(Enumerable.Range(0, 3), i => Assert.Equal(2, fleet.SubEnvs(i))); // contiguous slices: rows 2, 3 on server 1

        var random = new Random(3);
        int vocab = env.Spec.VocabSize, eos = env.Spec.EosIds[0];
        var actions = new int[6];
        var endedBefore = new bool[6];
        int? killedAt = null;
        var lossSeen = DateTime.MinValue;
        var lostAt = new Dictionary<int, int>();
        int finishedAfterKill = 0, steps = 0;
        var slowest = TimeSpan.Zero;
        for (int step = 0; step < 80; step++)
        {
            // The kill lands when both of server 1's sub-envs have an episode in flight, so both must be reported lost.
            if (killedAt is null && step >= 10 && !endedBefore[2] && !endedBefore[3])
            {
                fleet.Kill(1);
                killedAt = step;
            }
            for (int b = 0; b < 6; b++) actions[b] = random.NextDouble() < 0.12 ? eos : random.Next(vocab);
            var clock = Stopwatch.StartNew();
            var r = env.Step(actions);
            slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            steps++;
            if (lossSeen == DateTime.MinValue && r.Lost.Contains(true)) lossSeen = DateTime.UtcNow; // the env gave the server up during this step
            for (int b = 0; b < 6; b++)
            {
                if (r.Lost[b])
                {
                    Assert.True(r.Truncated[b] && !r.Terminated[b] && r.Episodes[b] is null && r.Rewards[b] == 0, $"sub-env {b}: a lost episode is truncated, with nothing to learn from");
                    Assert.False(lostAt.ContainsKey(b), $"sub-env {b} reported lost twice");
                    lostAt[b] = step;
                }
                else if (r.Terminated[b] || r.Truncated[b])
                {
                    Assert.NotNull(r.Episodes[b]);
                    if (killedAt is { } k && step > k && b is 2 or 3) finishedAfterKill++;
                }
                if (lostAt.TryGetValue(b, out int at) && at == step - 1)
                    Assert.True(r.ResetPrompts[b] is not null, $"sub-env {b}: the step after the loss is its reset step, on another server");
                endedBefore[b] = r.Terminated[b] || r.Truncated[b];
            }
        }
        Assert.NotNull(killedAt);
        Assert.Equal([2, 3], lostAt.Keys.Order().ToArray());
        Assert.All(lostAt.Values, at => Assert.Equal(killedAt, at)); // found out by the very step the kill preceded
        Assert.True(finishedAfterKill > 0, "the moved sub-envs finished episodes on their new servers");
        Assert.Equal(80, steps);
        Assert.True(slowest < TimeSpan.FromSeconds(20), $"a step took {slowest.TotalSeconds:F1} s: a dead server must not stall the run until the 60 s step timeout");
        Assert.True(env.ServersLost == 1, string.Join("\n", log));
        Assert.Equal(2, env.EpisodesLost);
        Assert.False(env.Servers[1].Alive);
        Assert.Equal(6, fleet.SubEnvs(0) + fleet.SubEnvs(2));
        Assert.Contains(log, line => line.Contains(fleet.Addresses[1]) && line.Contains("sub-envs move"));

        // Restarted at the same address, the server gets its share back at the next full reset.
        fleet.Start(1);
        // A dead server is asked again at most every 5 s after it was given up. Counting from the kill instead raced:
        // on a loaded CI machine the step that noticed the loss ended more than 0.2 s after the kill.
        var sinceLoss = DateTime.UtcNow - lossSeen;
        if (sinceLoss < TimeSpan.FromSeconds(5.1)) Thread.Sleep(TimeSpan.FromSeconds(5.1) - sinceLoss);
        env.Reset(seed: 12);
        Assert.True(env.Servers[1].Alive, string.Join("\n", log));
        Assert.All(Enumerable.Range(0, 3), i => Assert.Equal(2, fleet.SubEnvs(i)));
        Assert.Contains(log, line => line.Contains($"{fleet.Addresses[1]} is back"));
        for (int step = 0; step < 5; step++) Assert.DoesNotContain(true, env.Step(actions).Lost);
    }

    [Fact]
    public void A_rollout_leaves_out_the_lost_episodes_with_their_groups_and_the_next_one_is_whole()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 10, seed: 6);
        using var fleet = new Fleet(3, bundle.Directory);
        using var sharded = new ShardedVectorEnv(fleet.Addresses, numEnvs: 6, heartbeat: TimeSpan.Zero);
        // Server 1 dies just before the rollout's first step: every episode is in flight, so its whole group is lost.
        using var env = new KillBeforeStep(sharded, atStep: 1, () => fleet.Kill(1));
        using var policy = new PolicyModel(bundle.LoadReference(CPU), 1.0, 6);
        using var sampler = new Sampler(seed: 2);

        var first = RolloutCollector.Collect(env, policy, sampler, seed: 1, groupSize: 2);
        Assert.Equal(2, first.LostEpisodes);
        Assert.Equal(2, first.DroppedEpisodes);
        Assert.Equal(4, first.Episodes.Count);
        Assert.Equal([0, 2], first.Episodes.Select(e => e.Group).Distinct().Order().ToArray());

        var second = RolloutCollector.Collect(env, policy, sampler, seed: 2, groupSize: 2);
        Assert.Equal(0, second.LostEpisodes);
        Assert.Equal(6, second.Episodes.Count);
        Assert.Equal(6, fleet.SubEnvs(0) + fleet.SubEnvs(2)); // re-spread in whole groups: 4 + 2
        Assert.Contains(fleet.SubEnvs(0), new[] { 2, 4 });
    }

    [Fact]
    public void Under_disabled_autoreset_a_drained_servers_sub_envs_finish_lost_and_a_masked_reset_moves_them()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 16, seed: 7);
        using var fleet = new Fleet(2, bundle.Directory, "--drain-grace", "2");
        using var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 4, autoreset: AutoresetMode.Disabled, heartbeat: TimeSpan.Zero,
            connectTimeout: TimeSpan.FromSeconds(3));
        env.Reset(seed: 3);
        int notEos = (env.Spec.EosIds[0] + 1) % env.Spec.VocabSize;
        var go = Enumerable.Repeat(notEos, 4).ToArray();
        env.Step(go);

        fleet.Terminate(0); // SIGTERM: the server drains and answers `draining`, which moves sub-envs like a death
        var signalled = Stopwatch.StartNew();
        while (!EnvServerProbe.Health(fleet.Addresses[0], TimeSpan.FromSeconds(5)).Draining)
        {
            Assert.True(signalled.Elapsed < TimeSpan.FromSeconds(30), "the server did not start draining");
            Thread.Sleep(20);
        }
        var r = env.Step(go);
        Assert.Equal([true, true, false, false], r.Lost);
        Assert.Equal([true, true, false, false], r.Truncated);
        Assert.False(env.Servers[0].Alive);
        Assert.Contains("draining", env.Servers[0].LostReason);
        // Finished under disabled autoreset: their action must be NoAction until they are reset.
        Assert.Throws<InvalidOperationException>(() => env.Step(go));
        r = env.Step([EnvSpec.NoAction, EnvSpec.NoAction, notEos, notEos]);
        Assert.DoesNotContain(true, r.Lost);

        env.Reset(options: new ResetOptions { Mask = [true, true, false, false] });
        Assert.Equal(4, fleet.SubEnvs(1));
        r = env.Step(go);
        Assert.DoesNotContain(true, r.Lost);

        fleet.Kill(1);
        r = env.Step(go);
        Assert.Equal([true, true, true, true], r.Lost);
        var none = Assert.Throws<NoServerLeftException>(() => env.Reset(seed: 4));
        Assert.Equal("no_server", none.Code);
        Assert.Contains(fleet.Addresses[0], none.Message);
        Assert.Contains(fleet.Addresses[1], none.Message);
    }

    [Fact]
    public void The_env_checker_passes_on_a_sharded_env_in_both_autoreset_modes()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 9);
        using var fleet = new Fleet(2, bundle.Directory);
        foreach (var mode in new[] { AutoresetMode.NextStep, AutoresetMode.Disabled })
        {
            using var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 4, autoreset: mode, heartbeat: TimeSpan.Zero);
            var report = EnvChecker.Check(env, seed: 3, steps: 24);
            Assert.True(report.Passed, $"{mode}: " + string.Join("\n", report.Failures.Select(f => $"{f.Name}: {f.Detail}")));
        }
        using (var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 6, heartbeat: TimeSpan.Zero))
        {
            // The same seed gives the same prompts; a reset without one goes on with each session's own stream.
            var seeded = env.Reset(seed: 4).PromptIds;
            Assert.Equal(seeded, env.Reset(seed: 4).PromptIds);
            var first = env.Reset().PromptIds;
            var second = env.Reset().PromptIds;
            Assert.NotEqual(seeded, first);
            Assert.NotEqual(seeded, second);
            Assert.NotEqual(first, second);
        }
        using (var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 2, heartbeat: TimeSpan.Zero))
        {
            var paths = env.DownloadAssets(dir.File("assets"));
            Assert.True(paths.ContainsKey("reference/config.json") && new FileInfo(paths["reference/config.json"]).Length > 0, string.Join(", ", paths.Keys));
            Assert.Equal(env.Assets().Count, paths.Count);
        }
    }

    [Fact]
    public void A_partial_reset_that_finds_a_restarted_server_moves_its_sub_envs_instead_of_failing()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 16, seed: 7);
        using var fleet = new Fleet(2, bundle.Directory);
        using var env = new ShardedVectorEnv(fleet.Addresses, numEnvs: 4, heartbeat: TimeSpan.Zero, connectTimeout: TimeSpan.FromSeconds(3));
        env.Reset(seed: 3);
        int notEos = (env.Spec.EosIds[0] + 1) % env.Spec.VocabSize;
        var go = Enumerable.Repeat(notEos, 4).ToArray();
        env.Step(go);
        fleet.Kill(1);
        fleet.Start(1); // the same address, a new process: the sessions of sub-envs 2 and 3 are gone

        // A partial reset cannot start the lost session again (a session's first reset is full): the shard moves.
        var reset = env.Reset(options: new ResetOptions { Mask = [false, false, true, false] });
        Assert.NotNull(reset.Prompts[2]);
        var r = env.Step(go);
        // Sub-envs 0 and 1 (the other server) are not asserted: once, on a loaded CI machine, they were reported lost too.
        Assert.True(r.Lost[3], "sub-env 3's episode in flight was lost with the session");
        Assert.False(r.Lost[2], "sub-env 2 was reset on a new session");
        r = env.Step(go); // its reset step, on a new session
        Assert.NotNull(r.ResetPrompts[3]);
        Assert.DoesNotContain(true, r.Lost);
    }

    [Fact]
    public async Task The_python_sharded_env_also_moves_a_slice_whose_server_restarted_on_a_partial_reset()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 16, seed: 7);
        using var fleet = new Fleet(2, bundle.Directory);
        string ready = dir.File("ready"), go = dir.File("go");
        // The client holds its sessions across the restart, so it waits (a file) while the test restarts server 1.
        string code = """
            import os, sys, time
            from rlhfgym_client import ShardedVectorEnv
            addresses, ready, go = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
            env = ShardedVectorEnv(addresses, num_envs=4, heartbeat=False, connect_timeout=3.0)
            env.reset(seed=3)
            token = (env.spec["eos_ids"][0] + 1) % env.spec["vocab_size"]
            env.step([token] * 4)
            open(ready, "w").close()
            while not os.path.exists(go):
                time.sleep(0.05)
            env.reset(options={"mask": [False, False, True, False]})
            info = env.step([token] * 4)[4]
            print("lost", [bool(x) for x in info["lost"]])
            info = env.step([token] * 4)[4]
            print("then", bool(info["_reset_prompt_ids"][3]), [bool(x) for x in info["lost"]])
            env.close()
            """;
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", code, string.Join(",", fleet.Addresses), ready, go }) psi.ArgumentList.Add(a);
        psi.Environment["PYTHONPATH"] = RepositoryRoot.File("clients", "python");
        using var python = Process.Start(psi)!;
        var stdout = python.StandardOutput.ReadToEndAsync();
        var stderr = python.StandardError.ReadToEndAsync();
        var waited = Stopwatch.StartNew();
        while (!File.Exists(ready))
        {
            if (python.HasExited) Assert.Fail($"the client ended early: {await stderr}");
            Assert.True(waited.Elapsed < TimeSpan.FromMinutes(1), "the client never got ready");
            await Task.Delay(50);
        }
        fleet.Kill(1);
        fleet.Start(1);
        File.WriteAllText(go, "");
        using var finish = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await python.WaitForExitAsync(finish.Token);
        Assert.True(python.ExitCode == 0, await stderr);
        string printed = await stdout;
        Assert.Contains("lost [False, False, False, True]", printed);
        Assert.Contains("then True [False, False, False, False]", printed);
    }

    [Fact]
    public void A_server_name_that_does_not_resolve_is_left_out_like_a_dead_server_and_a_disposed_env_refuses_calls()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 7);
        using var fleet = new Fleet(1, bundle.Directory);
        // A StatefulSet pod's DNS name exists only while the pod is ready.
        const string NotYet = "tcp://rlhfgym-env-9.not-yet.invalid:5555";
        var alone = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(NotYet, heartbeat: TimeSpan.Zero));
        Assert.Equal("unreachable", alone.Code);
        Assert.Contains(NotYet, alone.Message);

        var env = new ShardedVectorEnv([fleet.Addresses[0], NotYet], numEnvs: 2, heartbeat: TimeSpan.Zero, connectTimeout: TimeSpan.FromSeconds(1));
        Assert.Equal(1, env.ServersLost);
        Assert.False(env.Servers[1].Alive);
        env.Reset(seed: 1);
        env.Step([5, 6]);
        env.Dispose();
        Assert.Throws<ObjectDisposedException>(() => env.Step([5, 6]));
        Assert.Throws<ObjectDisposedException>(() => env.Reset(seed: 1));
        Assert.Throws<ObjectDisposedException>(() => env.Assets());
    }

    [Fact]
    public void Bad_server_lists_are_named()
    {
        Assert.Contains("at least one", Assert.Throws<ArgumentException>(() => new ShardedVectorEnv([])).Message);
        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() => new ShardedVectorEnv(["tcp://127.0.0.1:1", "tcp://127.0.0.1:1"])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ShardedVectorEnv(["tcp://127.0.0.1:1"], numEnvs: 0));
        string silent = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        var none = Assert.Throws<NoServerLeftException>(() => new ShardedVectorEnv([silent], connectTimeout: TimeSpan.FromSeconds(0.5)));
        Assert.Contains(silent, none.Message);

        using var dir = new TempDir();
        var a = RandomBundle.Write(dir.File("a"), maxNewTokens: 8, seed: 1);
        var b = RandomBundle.Write(dir.File("b"), maxNewTokens: 9, seed: 1);
        using var fleetA = new Fleet(1, a.Directory);
        using var fleetB = new Fleet(1, b.Directory);
        var mixed = Assert.Throws<ArgumentException>(() => new ShardedVectorEnv([fleetA.Addresses[0], fleetB.Addresses[0]], numEnvs: 2, heartbeat: TimeSpan.Zero));
        Assert.Contains(fleetB.Addresses[0], mixed.Message);
        Assert.Contains("same env", mixed.Message);
    }

    [Fact]
    public async Task Train_on_three_servers_goes_on_when_one_is_killed_mid_run()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 10, seed: 8);
        using var fleet = new Fleet(3, bundle.Directory);
        string runDir = dir.File("run");
        var training = Task.Run(() => CliRunner.Run("train", "--env", string.Join(",", fleet.Addresses), "--init",
            Path.Combine(bundle.Directory, RlhfGym.Env.Bundles.EnvBundle.ReferenceDir), "--num-envs", "6", "--iterations", "5",
            "--out", runDir, "--json"));
        // The kill lands once the first iteration is logged: training has started on all three.
        string metrics = Path.Combine(runDir, "metrics.jsonl");
        var waited = Stopwatch.StartNew();
        while (!(File.Exists(metrics) && File.ReadLines(metrics).Any()) && !training.IsCompleted)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromMinutes(3), "no iteration logged in 3 minutes");
            await Task.Delay(50);
        }
        fleet.Kill(1);
        var run = await training;
        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Equal(5, File.ReadLines(metrics).Count());
        Assert.Contains($"lost the session at {fleet.Addresses[1]}", run.StdOut + run.StdErr);
        Assert.Equal(0, fleet.SubEnvs(0) + fleet.SubEnvs(2)); // the run closed its sessions on the way out
    }

    [Fact]
    public void The_python_sharded_env_survives_a_sigkill_of_one_of_three_servers()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 12, seed: 5);
        using var fleet = new Fleet(3, bundle.Directory);
        string client = RepositoryRoot.File("clients", "python");
        var run = ProcessRunner.Run("/usr/bin/python3",
            [Path.Combine(client, "tests", "check_sharded.py"), string.Join(",", fleet.Addresses), string.Join(",", fleet.ProcessIds)],
            TimeSpan.FromMinutes(3), environment: new Dictionary<string, string> { ["PYTHONPATH"] = client });
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("sharded checks passed", run.StdOut);
    }

    [Fact]
    public void Bench_chaos_kills_and_restarts_servers_with_no_error_and_no_hang()
    {
        var run = CliRunner.Run("bench", "chaos", "--servers", "3", "--seconds", "8", "--mean-between-failures", "1.2", "--downtime", "1", "--num-envs", "6", "--json");
        Assert.True(run.ExitCode == 0, run.Describe());
        var r = run.LastJson();
        Assert.True((int)r["kills"]! + (int)r["terminations"]! >= 2, run.StdOut);
        Assert.True((int)r["steps"]! > 0 && (int)r["episodes"]! > 0, run.StdOut);
        Assert.True((int)r["errors"]! == 0 && (int)r["hangs"]! == 0, run.StdOut);

        foreach (var (flag, value, message) in new[]
        {
            ("--servers", "1", "--servers must be in 2..16"),
            ("--seconds", "0", "--seconds must be in 1..3600"),
            ("--mean-between-failures", "0", "--mean-between-failures must be in 0.1..3600"),
            ("--downtime", "-1", "--downtime must be in 0..3600"),
            ("--max-new-tokens", "500", "--max-new-tokens must be at most 160"),
        })
        {
            var bad = CliRunner.Run("bench", "chaos", flag, value, "--json");
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains(message, (string)bad.LastJson()["error"]!);
        }
    }

    /// <summary>Runs an action (a server kill) just before the given Step of the env it wraps.</summary>
    private sealed class KillBeforeStep(IVectorEnv inner, int atStep, Action kill) : IVectorEnv
    {
        private int _steps;
        public EnvSpec Spec => inner.Spec;
        public ResetResult Reset(long? seed = null, ResetOptions? options = null) => inner.Reset(seed, options);

        public StepResult Step(ReadOnlySpan<int> actions)
        {
            if (++_steps == atStep) kill();
            return inner.Step(actions);
        }

        public void Dispose() { }
    }
}
