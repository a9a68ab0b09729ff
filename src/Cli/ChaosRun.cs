using System.Diagnostics;
using RlhfGym.PhraseWorld;
using RlhfGym.Transport;
using RlhfGym.Transport.Client;

namespace RlhfGym.Cli;

/// <summary>What a chaos run counted (`rlhfgym bench chaos`).</summary>
public sealed record ChaosReport(
    int Servers, int NumEnvs, double Seconds, long Steps, long Episodes, long LostEpisodes, int Kills, int Terminations,
    int Restarts, int RestartFailures, int ServersLost, int Errors, int Hangs, double MaxStepSeconds, double P99StepMs, IReadOnlyList<string> ErrorMessages);

/// <summary>
/// A sharded env stepped by a random agent for a fixed time while its `rlhfgym serve` processes are killed (SIGKILL) or
/// stopped (SIGTERM, a drain) at random and started again on the same address. At least one server is kept running, so
/// every failure is one the sharded env should absorb: any exception is counted as an error, and a step slower than
/// <see cref="HangSeconds"/> as a hang.
/// </summary>
public static class ChaosRun
{
    /// <summary>A step this slow counts as a hang: failover is meant to take well under a second.</summary>
    public const double HangSeconds = 10;

    public static ChaosReport Run(int servers, int numEnvs, TimeSpan duration, TimeSpan meanBetweenFailures, TimeSpan downtime, int maxNewTokens,
        long seed, Action<string> progress)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-chaos-" + Guid.NewGuid().ToString("N"));
        var fleet = new ServeProcess?[servers];
        var addresses = Enumerable.Range(0, servers).Select(_ => $"tcp://127.0.0.1:{LoopbackPort.Free()}").ToArray();
        var down = new Dictionary<int, Task<ServeProcess>>(); // server → its restart (after its downtime), in the background
        try
        {
            var bundle = RandomBundle.Write(Path.Combine(dir, "bundle"), maxNewTokens, seed);
            string[] serveArgs = ["--env", bundle.Directory, "--device", "cpu", "--drain-grace", "2"];
            for (int i = 0; i < servers; i++) fleet[i] = ServeProcess.Start(addresses[i], serveArgs, progress);
            using var env = new ShardedVectorEnv(addresses, numEnvs: numEnvs, stepTimeout: TimeSpan.FromSeconds(30), log: progress);
            var random = new Random(unchecked((int)seed));
            int vocab = env.Spec.VocabSize, eos = env.Spec.EosIds[0];
            var actions = new int[numEnvs];
            var stepMs = new List<double>();
            var errors = new List<string>();
            long steps = 0, episodes = 0, lost = 0;
            int hangs = 0, kills = 0, terminations = 0, restarts = 0, restartFailures = 0;
            var chaos = new Random(unchecked((int)seed * 31 + 7));
            // In the background: the stepping goes on while a server is down and starting.
            Task<ServeProcess> RestartAfterDowntime(int i, ServeProcess? failed) => Task.Run(async () =>
            {
                await Task.Delay(downtime);
                failed?.WaitForExit(TimeSpan.FromSeconds(10)); // a draining server frees its port when it exits
                failed?.Dispose();
                return ServeProcess.Start(addresses[i], serveArgs, progress);
            });
            var clock = Stopwatch.StartNew();
            var nextFailure = Exponential(chaos, meanBetweenFailures);
            env.Reset(seed);
            while (clock.Elapsed < duration)
            {
                // The chaos: one failure at a time, never the last running server; a server comes back after its downtime.
                if (clock.Elapsed >= nextFailure && down.Count < servers - 1)
                {
                    int victim = Enumerable.Range(0, servers).Where(i => !down.ContainsKey(i)).OrderBy(_ => chaos.Next()).First();
                    bool drain = chaos.NextDouble() < 1.0 / 3;
                    if (drain)
                    {
                        fleet[victim]!.Terminate();
                        terminations++;
                    }
                    else
                    {
                        fleet[victim]!.Kill();
                        kills++;
                    }
                    progress($"chaos: {(drain ? "SIGTERM" : "SIGKILL")} {addresses[victim]} at {clock.Elapsed.TotalSeconds:F1} s");
                    down[victim] = RestartAfterDowntime(victim, fleet[victim]);
                    nextFailure = clock.Elapsed + Exponential(chaos, meanBetweenFailures);
                }
                foreach (var (i, restart) in down.ToList())
                {
                    if (!restart.IsCompleted) continue;
                    if (restart.IsFaulted)
                    {
                        // Not the sharded env's failure: the server could not start (its port taken meanwhile). Try again.
                        restartFailures++;
                        progress($"chaos: restart of {addresses[i]} failed ({restart.Exception!.InnerException!.Message}); trying again");
                        down[i] = RestartAfterDowntime(i, failed: null);
                        continue;
                    }
                    fleet[i] = restart.Result;
                    down.Remove(i);
                    restarts++;
                }
                try
                {
                    // A full reset now and then, as each rollout does: it brings restarted servers back into the spread.
                    if (steps % 64 == 63) env.Reset();
                    for (int b = 0; b < numEnvs; b++) actions[b] = random.NextDouble() < 0.1 ? eos : random.Next(vocab);
                    long started = Stopwatch.GetTimestamp();
                    var r = env.Step(actions);
                    double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    stepMs.Add(ms);
                    if (ms >= HangSeconds * 1000) hangs++;
                    steps++;
                    for (int b = 0; b < numEnvs; b++)
                    {
                        if (r.Lost[b]) lost++;
                        else if (r.Episodes[b] is not null) episodes++;
                    }
                }
                catch (Exception e)
                {
                    errors.Add($"{e.GetType().Name}: {e.Message}");
                    progress($"chaos: error {e.Message}");
                    try { env.Reset(); } catch (Exception again) { errors.Add($"{again.GetType().Name}: {again.Message}"); }
                }
            }
            stepMs.Sort();
            return new ChaosReport(servers, numEnvs, clock.Elapsed.TotalSeconds, steps, episodes, lost, kills, terminations, restarts, restartFailures,
                env.ServersLost, errors.Count, hangs, stepMs.Count == 0 ? 0 : stepMs[^1] / 1000, stepMs.Count == 0 ? 0 : stepMs[(int)Math.Min(stepMs.Count - 1, Math.Ceiling(0.99 * stepMs.Count) - 1)],
                errors.Distinct().Take(5).ToList());
        }
        finally
        {
            foreach (var server in fleet) server?.Dispose();
            foreach (var restart in down.Values)
            {
                try { restart.GetAwaiter().GetResult().Dispose(); }
                catch (Exception) { } // it failed to start: nothing to stop
            }
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static TimeSpan Exponential(Random random, TimeSpan mean) => TimeSpan.FromSeconds(-Math.Log(1 - random.NextDouble()) * mean.TotalSeconds);
}
