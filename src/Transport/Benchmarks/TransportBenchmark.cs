using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Server;
using static TorchSharp.torch;

namespace RlhfGym.Transport.Benchmarks;

public sealed record TransportBenchmarkResult(int Batch, int Steps, double InProcessSeconds, double RemoteSeconds, double RemoteVsInProcess,
    double RemoteTokensPerSecond, double PingP50Ms, double PingP99Ms, int Pings);

/// <summary>
/// The same episodes stepped in-process and through a real env server on tcp loopback, in paired repeats (one run of
/// each back to back, so both see the same machine load); then the round trip of a small request (ping).
/// </summary>
public static class TransportBenchmark
{
    public static TransportBenchmarkResult Run(int batch, int steps, int repeats, int pings, int port, Device device, long seed = 1,
        Action<string>? progress = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-transport-" + Guid.NewGuid().ToString("N"));
        var server = new EnvServer(Options.Create(new EnvServerOptions
        {
            Bind = $"tcp://127.0.0.1:{port}",
            Env = dir,
            MaxNumEnvs = Math.Max(256, batch),
            Device = device.ToString(),
        }), NullLogger<EnvServer>.Instance);
        try
        {
            var bundle = RandomBundle.Write(dir, steps, seed);
            server.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
            server.Bound.Task.GetAwaiter().GetResult();
            using var local = new TextVectorEnv(bundle, batch, bundle.Defaults, AutoresetMode.Disabled, device);
            using var remote = new RemoteVectorEnv($"tcp://127.0.0.1:{port}", dir, batch, AutoresetMode.Disabled);
            var rng = new SeededRandom(seed);
            int vocab = bundle.Tokenizer.VocabSize;
            // Ids 0-2 are PhraseWorld's specials (pad, eos, …): every episode then runs its full budget.
            var actions = Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, batch).Select(_ => 3 + rng.Next(vocab - 3)).ToArray()).ToArray();

            progress?.Invoke($"bench transport: {batch} envs × {steps} steps, {repeats} paired repeats in-process / remote (tcp loopback)");
            var localTimes = new List<double>();
            var remoteTimes = new List<double>();
            var ratios = new List<double>();
            for (int r = 0; r <= repeats; r++) // round 0 warms up both and is not kept
            {
                double l = Episode(local, actions, seed), m = Episode(remote, actions, seed);
                if (r == 0) continue;
                localTimes.Add(l);
                remoteTimes.Add(m);
                ratios.Add(l / m);
            }

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
            double remoteSeconds = Median(remoteTimes);
            return new TransportBenchmarkResult(batch, steps, Median(localTimes), remoteSeconds, Median(ratios), batch * steps / remoteSeconds,
                Percentile(roundTrips, 0.50), Percentile(roundTrips, 0.99), pings);
        }
        finally
        {
            server.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            server.Dispose();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    private static double Episode(IVectorEnv env, int[][] actions, long seed)
    {
        env.Reset(seed);
        var clock = Stopwatch.StartNew();
        foreach (var a in actions) env.Step(a);
        return clock.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
