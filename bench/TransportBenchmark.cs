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
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record TransportBenchmarkResult(int Batch, int Steps, double InProcessSeconds, double RemoteSeconds, double RemoteVsInProcess,
    double RemoteTokensPerSecond, double PingP50Ms, double PingP99Ms, int Pings);

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
            var rng = new SeededRandom(seed);
            int vocab = bundle.VocabSize;
            // Ids 0-2 are PhraseWorld's specials (pad, eos, …): every episode then runs its full budget.
            var actions = Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, batch).Select(_ => 3 + rng.Next(vocab - 3)).ToArray()).ToArray();

            progress?.Invoke($"bench transport: {batch} envs × {steps} steps, {repeats} paired repeats in-process / remote (tcp loopback)");
            var localTimes = new List<double>();
            var remoteTimes = new List<double>();
            var ratios = new List<double>();
            // Warm-up rounds, not kept: a fresh server process reaches steady speed only once tiered JIT has
            // recompiled its hot methods (traced on 2 cores: the server handled rounds 0–3 at 3.1×, 2.3×, 1.6× and 1.4× its steady step time).
            const int warmUps = 4;
            for (int r = 1 - warmUps; r <= repeats; r++)
            {
                // Alternate which goes first, so a drift in machine load does not favour either side.
                double l, m;
                if (r % 2 == 0) { l = Episode(local, actions, seed); m = Episode(remote, actions, seed); }
                else { m = Episode(remote, actions, seed); l = Episode(local, actions, seed); }
                if (r < 1) continue;
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

    private sealed class HostedServer(EnvServer server) : IDisposable
    {
        public void Dispose()
        {
            server.StopAsync(CancellationToken.None).GetAwaiter().GetResult();
            server.Dispose();
        }
    }

    private static IDisposable InProcessServer(string bundleDir, string address, int batch, Device device)
    {
        var server = new EnvServer(Options.Create(new EnvServerOptions
        {
            Bind = address,
            Env = bundleDir,
            MaxNumEnvs = Math.Max(256, batch),
            Device = device.ToString(),
        }), NullLogger<EnvServer>.Instance);
        server.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        server.Bound.Task.GetAwaiter().GetResult();
        return new HostedServer(server);
    }

    private static double Episode(IVectorEnv env, int[][] actions, long seed)
    {
        env.Reset(seed);
        var clock = Stopwatch.StartNew();
        foreach (var a in actions) env.Step(a);
        return clock.Elapsed.TotalSeconds;
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}
