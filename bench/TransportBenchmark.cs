using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RlhfGym.Benchmarks;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Server;
using RlhfGym.Transport.Wire;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record TransportBenchmarkResult(int Batch, int Steps, double InProcessSeconds, double RemoteSeconds, double RemoteVsInProcess,
    double RemoteTokensPerSecond, double PingP50Ms, double PingP99Ms, int Pings);

/// <param name="Ratios">concurrent_vs_single of each paired repeat.</param>
/// <param name="ScoreSingleSeconds">One client scoring all N·k finished episodes in one request (median).</param>
/// <param name="ScoreConcurrentSeconds">N clients each scoring its k episodes at once (median, until the last is answered).</param>
/// <param name="ScoreConcurrentVsSingle">Median over paired repeats of the single score's seconds over the concurrent ones'.</param>
/// <param name="ResetSingleSeconds">One client resetting all N·k sub-envs (median).</param>
/// <param name="ResetConcurrentSeconds">N clients each resetting its k sub-envs at once (median, until the last is answered).</param>
/// <param name="ResetConcurrentVsSingle">Median over paired repeats of the single reset's seconds over the concurrent ones'.</param>
/// <param name="BatchedStepShare">Of the concurrent clients' steps (every concurrent round, warm-ups included), the share that
/// ran in a batched forward with another session's (the server's health: batched_steps); 0 when the server does not batch.</param>
/// <param name="SessionsPerBatchedStep">Their mean number of sessions per batched forward (batched_steps / step_batches), 2..N;
/// 0 when none ran batched.</param>
/// <param name="SingleServerPhases">Where the server's time went per step of the single client, over the kept rounds.</param>
/// <param name="ConcurrentServerPhases">The same per step of all N clients (one row of the token table), over the kept rounds.</param>
public sealed record ConcurrentTransportResult(int Clients, int EnvsPerClient, int Steps, double SingleSeconds, double ConcurrentSeconds,
    double SingleTokensPerSecond, double ConcurrentTokensPerSecond, double ConcurrentVsSingle, IReadOnlyList<double> Ratios,
    double ScoreSingleSeconds, double ScoreConcurrentSeconds, double ScoreConcurrentVsSingle,
    double ResetSingleSeconds, double ResetConcurrentSeconds, double ResetConcurrentVsSingle, double BatchedStepShare, double SessionsPerBatchedStep,
    ServerPhases SingleServerPhases, ServerPhases ConcurrentServerPhases);

/// <summary>
/// The same episodes stepped in-process and through a real env server on tcp loopback, in paired repeats (one run of
/// each back to back, so both see the same machine load); then the round trip of a small request (ping).
/// </summary>
/// <remarks>
/// Give the server its own process (<c>startServer</c>), as in real use. In one process, the server thread's and
/// the caller's OpenMP teams together exceed the cores, OpenMP stops spinning between parallel regions, and every
/// small tensor op of both envs slows about threefold (measured on 2 cores).
/// </remarks>
public static class TransportBenchmark
{
    /// <param name="startServer">Starts a server for (bundle directory, address) and returns its handle; null runs an
    /// <see cref="EnvServer"/> inside this process.</param>
    public static TransportBenchmarkResult Run(int batch, int steps, int repeats, int pings, int port, Device device, long seed = 1,
        Action<string>? progress = null, Func<string, string, IDisposable>? startServer = null, TransformerConfig? shape = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-transport-" + Guid.NewGuid().ToString("N"));
        string address = $"tcp://127.0.0.1:{port}";
        IDisposable? server = null;
        try
        {
            var bundle = RandomBundle.Write(dir, steps, seed, shape);
            server = startServer is null ? InProcessServer(dir, address, batch, device) : startServer(dir, address);
            using var local = new TextVectorEnv(bundle, batch, bundle.Defaults, AutoresetMode.Disabled, device);
            using var remote = new RemoteVectorEnv(address, dir, batch, AutoresetMode.Disabled);
            var actions = FullBudgetActions(seed, bundle.VocabSize, steps, batch);

            progress?.Invoke($"bench transport: {batch} envs × {steps} steps, {repeats} paired repeats in-process / remote (tcp loopback)");
            // Warm-up rounds, not kept: a fresh server process reaches steady speed only once tiered JIT has
            // recompiled its hot methods (traced on 2 cores: the server handled rounds 0–3 at 3.1×, 2.3×, 1.6× and 1.4× its steady step time).
            var (localTimes, remoteTimes, ratios) = PairedRounds(warmUps: 4, repeats, () => Episode(local, actions, seed), () => Episode(remote, actions, seed));

            progress?.Invoke($"bench transport: {pings} pings");
            var roundTrips = new double[pings];
            var clock = new Stopwatch();
            for (int i = 0; i < pings; i++)
            {
                clock.Restart();
                remote.Ping();
                roundTrips[i] = clock.Elapsed.TotalMilliseconds;
            }
            Array.Sort(roundTrips);
            double remoteSeconds = Stopwatches.Median(remoteTimes);
            return new TransportBenchmarkResult(batch, steps, Stopwatches.Median(localTimes), remoteSeconds, Stopwatches.Median(ratios), batch * steps / remoteSeconds,
                Percentile(roundTrips, 0.50), Percentile(roundTrips, 0.99), pings);
        }
        finally
        {
            server?.Dispose();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// N clients of k sub-envs stepping concurrently against one server, against one client of N·k sub-envs, in paired
    /// repeats: the same tokens through the same server, so the ratio of their throughputs shows what serving many
    /// small sessions costs.
    /// </summary>
    public static ConcurrentTransportResult RunConcurrent(int clients, int envsPerClient, int steps, int repeats, int port, Device device,
        long seed = 1, double eosRate = 0, Action<string>? progress = null, Func<string, string, IDisposable>? startServer = null, TransformerConfig? shape = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-transport-" + Guid.NewGuid().ToString("N"));
        string address = $"tcp://127.0.0.1:{port}";
        int total = clients * envsPerClient;
        IDisposable? server = null;
        var many = new List<RemoteVectorEnv>();
        try
        {
            var bundle = RandomBundle.Write(dir, steps, seed, shape);
            server = startServer is null ? InProcessServer(dir, address, total, device, maxSessions: clients + 1) : startServer(dir, address);
            // Episodes that end early (EOS) start again at once (next-step autoreset), so new prompts are prefilled mid-run.
            var autoreset = eosRate > 0 ? AutoresetMode.NextStep : AutoresetMode.Disabled;
            using var single = new RemoteVectorEnv(address, dir, total, autoreset, heartbeat: TimeSpan.Zero);
            for (int c = 0; c < clients; c++) many.Add(new RemoteVectorEnv(address, dir, envsPerClient, autoreset, heartbeat: TimeSpan.Zero));
            var actions = FullBudgetActions(seed, bundle.VocabSize, steps, total);
            if (eosRate > 0) EndSomeEarly(actions, seed, eosRate, bundle.EosIds[0]);
            // Client c sends columns c·k .. c·k+k−1 of the same token table the single client sends whole.
            var slices = Enumerable.Range(0, clients)
                .Select(c => actions.Select(row => row.AsSpan(c * envsPerClient, envsPerClient).ToArray()).ToArray()).ToArray();

            progress?.Invoke($"bench transport: {clients} clients × {envsPerClient} envs concurrently vs 1 client × {total} envs, {steps} steps, {repeats} paired repeats");
            // Same tokens on both sides: the throughput ratio is the inverse time ratio.
            // The server's batching counters, read around each concurrent round (outside its clock), say how full its bursts were.
            // The same totals around every round of both sides also say where the server's time went (ServerPhases).
            long stepsSent = 0, batchedSteps = 0, stepBatches = 0;
            var singleRounds = new List<(double, HealthMessage, HealthMessage)>();
            var concurrentRounds = new List<(double, HealthMessage, HealthMessage)>();
            // The resets before a round's clock starts are outside the totals too.
            double Watched(Action reset, Func<double> round, List<(double, HealthMessage, HealthMessage)> into)
            {
                reset();
                var before = EnvServerProbe.Health(address, TimeSpan.FromSeconds(30));
                double seconds = round();
                var after = EnvServerProbe.Health(address, TimeSpan.FromSeconds(30));
                into.Add((seconds, before, after));
                return seconds;
            }
            double ConcurrentRound()
            {
                double seconds = Watched(() => ResetEach(many, seed), () => AllStep(many, slices), concurrentRounds);
                var (_, before, after) = concurrentRounds[^1];
                stepsSent += (long)clients * steps;
                batchedSteps += after.BatchedSteps - before.BatchedSteps;
                stepBatches += after.StepBatches - before.StepBatches;
                return seconds;
            }
            const int warmUps = 2;
            var (singleTimes, concurrentTimes, ratios) = PairedRounds(warmUps, repeats, () => Watched(() => single.Reset(seed), () => Steps(single, actions), singleRounds), ConcurrentRound);
            double singleSeconds = Stopwatches.Median(singleTimes), concurrentSeconds = Stopwatches.Median(concurrentTimes);
            // Each side ran once per round: its kept rounds are its last `repeats`.
            var singlePhases = ServerPhases.Over(singleRounds[warmUps..], steps);
            var concurrentPhases = ServerPhases.Over(concurrentRounds[warmUps..], steps);

            // Then the same finished episodes (the single client's prompts, each column of the token table as a
            // response) scored by the one client at once, and by the N clients k each, at the same moment.
            var prompts = single.Reset(seed).Prompts;
            var responses = Enumerable.Range(0, total).Select(b => actions.Select(row => row[b]).ToArray()).ToArray();
            var shares = Enumerable.Range(0, clients).Select(c => (Prompts: prompts[(c * envsPerClient)..((c + 1) * envsPerClient)],
                Responses: responses[(c * envsPerClient)..((c + 1) * envsPerClient)])).ToArray();
            progress?.Invoke($"bench transport: scoring {total} episodes of {steps} tokens: {clients} clients × {envsPerClient} concurrently vs 1 client × {total}");
            var score = OneVsAllAtOnce(repeats, () => single.Score(prompts, responses), c => many[c].Score(shares[c].Prompts, shares[c].Responses), clients);

            // And resets: the single client's N·k new prompts in one request, against the N clients' k each at once.
            progress?.Invoke($"bench transport: resetting {clients} clients × {envsPerClient} concurrently vs 1 client × {total}");
            var reset = OneVsAllAtOnce(repeats, () => single.Reset(seed), c => many[c].Reset(seed + c), clients);
            return new ConcurrentTransportResult(clients, envsPerClient, steps, singleSeconds, concurrentSeconds,
                total * steps / singleSeconds, total * steps / concurrentSeconds, Stopwatches.Median(ratios), ratios,
                score.Single, score.Concurrent, score.Ratio, reset.Single, reset.Concurrent, reset.Ratio,
                (double)batchedSteps / stepsSent, stepBatches == 0 ? 0 : (double)batchedSteps / stepBatches, singlePhases, concurrentPhases);
        }
        finally
        {
            foreach (var env in many) env.Dispose();
            server?.Dispose();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    // One request of the single client against one request of each concurrent client at once, in paired rounds after a
    // warm-up: the medians of both sides' seconds and of single over concurrent.
    private static (double Single, double Concurrent, double Ratio) OneVsAllAtOnce(int repeats, Action single, Action<int> eachClient, int clients)
    {
        var (one, many, ratios) = PairedRounds(warmUps: 1, repeats, () => Stopwatches.Seconds(single), () => AllAtOnce(clients, eachClient));
        return (Stopwatches.Median(one), Stopwatches.Median(many), Stopwatches.Median(ratios));
    }

    // Each action becomes EOS with probability `rate` (the same table for both sides, so their episodes end together).
    private static void EndSomeEarly(int[][] actions, long seed, double rate, int eos)
    {
        var rng = new SeededRandom(seed + 1);
        foreach (var row in actions)
            for (int b = 0; b < row.Length; b++)
                if (rng.NextDouble() < rate) row[b] = eos;
    }

    // Ids 0-2 are PhraseWorld's specials (pad, eos, …): with none of them every episode runs its full budget.
    private static int[][] FullBudgetActions(long seed, int vocab, int steps, int rows)
    {
        var rng = new SeededRandom(seed);
        return Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, rows).Select(_ => 3 + rng.Next(vocab - 3)).ToArray()).ToArray();
    }

    /// <summary>
    /// Times a and b in turn for warm-up rounds (dropped) and then <paramref name="repeats"/> kept rounds, alternating
    /// which goes first so that a drift in machine load favours neither; returns both sides' seconds and a/b per round.
    /// </summary>
    private static (List<double> A, List<double> B, List<double> Ratios) PairedRounds(int warmUps, int repeats, Func<double> a, Func<double> b)
    {
        var (aTimes, bTimes, ratios) = (new List<double>(), new List<double>(), new List<double>());
        for (int r = 1 - warmUps; r <= repeats; r++)
        {
            double x, y;
            if (r % 2 == 0) { x = a(); y = b(); }
            else { y = b(); x = a(); }
            if (r < 1) continue;
            aTimes.Add(x);
            bTimes.Add(y);
            ratios.Add(x / y);
        }
        return (aTimes, bTimes, ratios);
    }

    // Each client resets with its own seed.
    private static void ResetEach(IReadOnlyList<RemoteVectorEnv> envs, long seed)
    {
        for (int c = 0; c < envs.Count; c++) envs[c].Reset(seed + c);
    }

    // All clients step their slices together from one start signal; the wall time until the last one finishes.
    private static double AllStep(IReadOnlyList<RemoteVectorEnv> envs, int[][][] slices) => AllAtOnce(envs.Count, c =>
    {
        foreach (var a in slices[c]) envs[c].Step(a);
    });

    // One thread per client, all released by one start signal; the wall time until the last one finishes.
    private static double AllAtOnce(int clients, Action<int> work)
    {
        using var start = new ManualResetEventSlim();
        var threads = Enumerable.Range(0, clients).Select(c => new Thread(() =>
        {
            start.Wait();
            work(c);
        })).ToList();
        threads.ForEach(t => t.Start());
        var clock = Stopwatch.StartNew();
        start.Set();
        threads.ForEach(t => t.Join());
        return clock.Elapsed.TotalSeconds;
    }

    private sealed class HostedServer(EnvServer server) : IDisposable
    {
        public void Dispose()
        {
            server.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            server.Dispose();
        }
    }

    private static IDisposable InProcessServer(string bundleDir, string address, int batch, Device device, int maxSessions = 32)
    {
        var server = new EnvServer(Options.Create(new EnvServerOptions
        {
            Bind = address,
            Env = bundleDir,
            MaxNumEnvs = Math.Max(256, batch),
            MaxSessions = Math.Max(32, maxSessions),
            Device = device.ToString(),
        }), NullLogger<EnvServer>.Instance);
        server.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        server.Bound.Task.GetAwaiter().GetResult();
        return new HostedServer(server);
    }

    private static double Episode(IVectorEnv env, int[][] actions, long seed)
    {
        env.Reset(seed);
        return Steps(env, actions);
    }

    // The wall time of stepping every row of the token table.
    private static double Steps(IVectorEnv env, int[][] actions)
    {
        var clock = Stopwatch.StartNew();
        foreach (var a in actions) env.Step(a);
        return clock.Elapsed.TotalSeconds;
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
