using System.Diagnostics;
using RlhfGym.Benchmarks;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

/// <param name="StepOverheadRatio">Env step loop over the bare incremental forward of reference LM + RM for the same
/// tokens (median of paired runs).</param>
/// <param name="ScoreVsStep">Stepping the responses token by token, over scoring them with one full forward each
/// (median of paired runs).</param>
/// <param name="RawFlops">FLOPs of the raw forward's decode steps (both models, each row's own span; DecodeStepFlops).</param>
public sealed record EnvBenchmarkResult(int Batch, int Steps, int VocabSize, double EnvSeconds, double RawSeconds, double RecomputeSeconds, double ScoreSeconds,
    double StepOverheadRatio, double ScoreVsStep, double RawFlops)
{
    /// <summary>The raw forward's rate; `bench decode` sets it against this machine's matmul ceiling.</summary>
    public double RawGflops => RawFlops / RawSeconds / 1e9;

    /// <summary>Recomputing the prefix of both models at every step, over the env's incremental stepping.</summary>
    public double IncrementalVsRecompute => RecomputeSeconds / EnvSeconds;
    public double TokensPerSecond => Batch * Steps / EnvSeconds;
}

/// <summary>
/// `rlhfgym bench env`: B sub-envs × T tokens on a PhraseWorld-shaped bundle with random weights (speed does not
/// depend on training), every figure measured in the same run on the same tokens. Actions never emit EOS, so every
/// episode runs the whole budget and ends truncated on the last step (its reward assembly is included).
/// </summary>
public static class EnvBenchmark
{
    public static EnvBenchmarkResult Run(int batch, int steps, int repeats, Device device, long seed = 1, Action<string>? progress = null,
        TransformerConfig? shape = null)
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-env-" + Guid.NewGuid().ToString("N"));
        try
        {
            var bundle = RandomBundle.Write(dir, steps, seed, shape);
            using var env = new TextVectorEnv(bundle, batch, bundle.Defaults, AutoresetMode.Disabled, device);
            var rng = new SeededRandom(seed);
            int eos = bundle.EosIds[0], vocab = bundle.VocabSize;
            var actions = Enumerable.Range(0, steps).Select(_ => Enumerable.Range(0, batch).Select(_ => 3 + rng.Next(vocab - 3)).ToArray()).ToArray();

            progress?.Invoke($"bench env: {batch} envs × {steps} steps, {repeats} paired repeats of env / raw forward / score");
            using var reference = bundle.LoadReference(device);
            using var rm = bundle.LoadRewardModel(device);
            int[][] prompts = [];
            List<int[]> responses = [];
            // Paired repeats: env, raw and score back to back, so each ratio compares runs under the same load.
            var envTimes = new List<double>();
            var rawTimes = new List<double>();
            var scoreTimes = new List<double>();
            for (int r = 0; r <= repeats; r++) // the first round warms up and is not kept
            {
                prompts = env.Reset(seed).Prompts;
                var clock = Stopwatch.StartNew();
                foreach (var a in actions) env.Step(a);
                double envRun = clock.Elapsed.TotalSeconds;
                responses = Enumerable.Range(0, batch).Select(b => actions.Select(a => a[b]).ToArray()).ToList();
                double rawRun = RawIncremental(reference, rm, prompts, actions, bundle.PadId, device);
                clock.Restart();
                env.Score(prompts, responses);
                double scoreRun = clock.Elapsed.TotalSeconds;
                if (r == 0) continue;
                envTimes.Add(envRun);
                rawTimes.Add(rawRun);
                scoreTimes.Add(scoreRun);
            }
            double envSeconds = Stopwatches.Median(envTimes), raw = Stopwatches.Median(rawTimes), score = Stopwatches.Median(scoreTimes);
            double overhead = Stopwatches.Median(envTimes.Zip(rawTimes, (e, w) => e / w).ToList());
            double scoreRatio = Stopwatches.Median(envTimes.Zip(scoreTimes, (e, c) => e / c).ToList());

            progress?.Invoke("bench env: recomputing the prefix at every step (once)");
            double recompute = Recompute(reference, rm, prompts, responses, bundle.PadId, device);
            double flops = 0;
            for (int s = 0; s < steps; s++)
            {
                flops += DecodeStepFlops.Matmul(bundle.ReferenceConfig, batch, lmHead: true) + DecodeStepFlops.Matmul(bundle.RewardConfig, batch, lmHead: false);
                foreach (var p in prompts) // each row attends over its own prompt plus the tokens so far
                    flops += DecodeStepFlops.Attention(bundle.ReferenceConfig, 1, p.Length + s + 1) + DecodeStepFlops.Attention(bundle.RewardConfig, 1, p.Length + s + 1);
            }
            return new EnvBenchmarkResult(batch, steps, vocab, envSeconds, raw, recompute, score, overhead, scoreRatio, flops);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    // Both models' decode steps for the same tokens: the work the env cannot avoid.
    private static double RawIncremental(CausalTransformer reference, RewardModel rm, int[][] prompts, int[][] actions, int pad, Device device)
    {
        using var scope = NewDisposeScope();
        using var batch = new SequenceBatch(prompts.Select(p => (p, Array.Empty<int>())).ToList(), pad, device);
        var tokens = actions.Select(a => tensor(a.Select(x => (long)x).ToArray(), ScalarType.Int64, device)).ToArray();
        return RawDecode.Seconds(reference, rm, batch.Tokens, batch.Lengths, tokens, InferenceLanes.Pay(device) ? InferenceLanes.Shared : null);
    }

    // A full forward of both models over prompt + response-so-far for every step: what a KV cache saves.
    private static double Recompute(CausalTransformer reference, RewardModel rm, int[][] prompts, List<int[]> responses, int pad, Device device)
    {
        using var _ = no_grad();
        var clock = Stopwatch.StartNew();
        for (int s = 1; s <= responses[0].Length; s++)
        {
            using var scope = NewDisposeScope();
            using var batch = new SequenceBatch(prompts.Select((p, b) => (p, responses[b][..s])).ToList(), pad, device);
            var hidden = reference.Forward(batch.Tokens, batch.Lengths);
            reference.Logits(CausalTransformer.LastPositions(hidden, batch.Lengths));
            rm.Values(batch).cpu();
        }
        return clock.Elapsed.TotalSeconds;
    }
}
