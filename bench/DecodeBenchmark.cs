using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record DecodeBenchmarkOptions
{
    /// <summary>Shape of both models (the reference LM and the reward model's trunk).</summary>
    public required TransformerConfig Config { get; init; }
    public int Batch { get; init; } = 64;
    public int PromptLength { get; init; } = 8;
    public int Steps { get; init; } = 128;
    public int Rounds { get; init; } = 3;
    /// <summary>Kernels timed side by side each round (Auto's choice is reported separately as the model's figure).</summary>
    public IReadOnlyList<DecodeAttention> Kernels { get; init; } = [DecodeAttention.Sdpa, DecodeAttention.Matmul, DecodeAttention.Reduce];
    /// <summary>A Python with torch to run bench/peer/decode_step.py in alternating rounds; null to skip the peer.</summary>
    public string? Python { get; init; }
    public IReadOnlyList<string> PythonEnvironment { get; init; } = [];
    public long Seed { get; init; } = 1;
}

/// <param name="KernelSeconds">Median seconds of the raw decode (both models, every step) per attention kernel.</param>
/// <param name="AutoKernel">The kernel <see cref="DecodeAttention.Auto"/> resolves to: the model's own figure.</param>
/// <param name="Lanes">Whether the two models stepped at once (<see cref="InferenceLanes"/>), as the env runs them here.</param>
/// <param name="SdpaSequentialSeconds">The step as it ran before `bench decode` existed: SDPA, the two
/// models one after the other on all threads.</param>
/// <param name="StepGflop">FLOPs of one decode step of both models at the mean span, in GFLOP.</param>
/// <param name="AchievedGflops">All counted FLOPs of the run over the Auto kernel's median seconds.</param>
/// <param name="CeilingGflops">The same machine's rate for the step's matrix products alone (the models' own weights and
/// shapes, nothing else), measured in the same run: the better of both models' products one after the other on all
/// threads and, where lanes are used, each model's products in its own lane at once.</param>
/// <param name="SquareGemmGflops">A 2048² fp32 matmul's rate, for scale.</param>
/// <param name="PyTorch">The peer's figures, or null without --pytorch.</param>
public sealed record DecodeBenchmarkResult(
    IReadOnlyDictionary<DecodeAttention, double> KernelSeconds,
    DecodeAttention AutoKernel,
    bool Lanes,
    double SdpaSequentialSeconds,
    double StepGflop,
    double AchievedGflops,
    double CeilingGflops,
    double SquareGemmGflops,
    PyTorchPeerResult? PyTorch)
{
    public double AutoSeconds => KernelSeconds[AutoKernel];
    public double FractionOfCeiling => AchievedGflops / CeilingGflops;
}

/// <param name="RlhfGymVsPyTorch">Median over rounds of RlhfGym's Auto-kernel time over PyTorch's best kernel in the
/// same round (below 1: RlhfGym is faster).</param>
/// <param name="RoundRatios">The per-round ratios <paramref name="RlhfGymVsPyTorch"/> is the median of, in round order.</param>
/// <param name="AchievedGflops">The same counted FLOPs over PyTorch's best median seconds.</param>
/// <param name="CeilingGflops">PyTorch's rate for the same matrix products alone, timed the same way as RlhfGym's ceiling
/// with its own BLAS: the two sides may multiply at different rates, and this says by how much.</param>
public sealed record PyTorchPeerResult(JsonObject Info, IReadOnlyDictionary<string, double> KernelSeconds, string Best, double BestSeconds,
    double RlhfGymVsPyTorch, IReadOnlyList<double> RoundRatios, double AchievedGflops, double CeilingGflops)
{
    public double FractionOfCeiling => AchievedGflops / CeilingGflops;
}

/// <summary>
/// `rlhfgym bench decode`: the env's per-token cost at any model size, alone. B rows of P-token random prompts are
/// prefilled (untimed) into a reference LM and a reward model with random weights of the given shape; then T decode
/// steps of both are timed (the reference's logits, the RM's value copied to the host), once per attention kernel per
/// round. Each round also times the step's matrix products alone (the ceiling) and, with a Python peer, the same step
/// in PyTorch eager. Ratios are taken within a round, medians across rounds.
/// </summary>
public static class DecodeBenchmark
{
    public static DecodeBenchmarkResult Run(DecodeBenchmarkOptions o, Device device, Action<string>? progress = null)
    {
        var c = o.Config with { MaxSeqLen = Math.Max(o.Config.MaxSeqLen, o.PromptLength + o.Steps + 1) };
        random.manual_seed(o.Seed);
        using var reference = new CausalTransformer(c, device);
        using var rm = new RewardModel(new CausalTransformer(c, device), new ScalarHead(c.DModel, device));
        reference.eval();
        rm.Transformer.eval();
        using var tokens = randint(3, c.VocabSize, [o.Batch, o.PromptLength + o.Steps], ScalarType.Int64, device);
        using var prompts = tokens.narrow(1, 0, o.PromptLength);
        var lengths = Enumerable.Repeat((long)o.PromptLength, o.Batch).ToArray();
        var steps = Enumerable.Range(0, o.Steps).Select(s => tokens.select(1, o.PromptLength + s).contiguous()).ToArray();

        string work = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-decode-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            PyTorchPeer? peer = null;
            if (o.Python is not null)
            {
                string config = Path.Combine(work, ModelCheckpoint.ConfigFile);
                AtomicFile.WriteAllText(config, JsonSerializer.Serialize(c, ModelCheckpoint.JsonOptions));
                progress?.Invoke($"bench decode: starting the PyTorch peer ({o.Python})");
                peer = new PyTorchPeer(o.Python, config, o.Batch, o.PromptLength, o.Steps, get_num_threads(), work, o.PythonEnvironment);
            }
            using (peer)
            {
                var autoKernel = DecodeAttentionKernels.Resolve(DecodeAttention.Auto);
                var kernels = o.Kernels.Append(autoKernel).Distinct().ToList();
                var lanes = InferenceLanes.Pay(device) ? InferenceLanes.Shared : null;
                double Time(DecodeAttention kernel, bool inLanes = true, int count = int.MaxValue)
                {
                    reference.DecodeAttention = rm.Transformer.DecodeAttention = kernel;
                    return RawDecode.Seconds(reference, rm, prompts, lengths, steps.Take(count).ToList(), inLanes ? lanes : null);
                }
                progress?.Invoke($"bench decode: d{c.DModel} L{c.NLayers} H{c.NHeads} B{o.Batch} × {o.Steps} steps, {o.Rounds} rounds of {string.Join("/", kernels.Select(DecodeAttentionKernels.Name))}");
                foreach (var k in kernels) Time(k, count: 8); // warm-up (allocator, threads, both lanes)
                Time(DecodeAttention.Sdpa, inLanes: false, count: 8);
                MatmulCeilingSeconds(reference, rm, o.Batch, o.Steps, device, lanes);

                var times = kernels.ToDictionary(k => k, _ => new List<double>());
                var sequential = new List<double>();
                var ceilings = new List<double>();
                var peerRounds = new List<JsonObject>();
                var ratios = new List<double>();
                for (int r = 0; r < o.Rounds; r++)
                {
                    foreach (var k in kernels) times[k].Add(Time(k));
                    sequential.Add(Time(DecodeAttention.Sdpa, inLanes: false));
                    ceilings.Add(MatmulCeilingSeconds(reference, rm, o.Batch, o.Steps, device, lanes));
                    if (peer is not null)
                    {
                        var round = peer.Round();
                        peerRounds.Add(round);
                        ratios.Add(times[autoKernel][^1] / round["best_s"]!.GetValue<double>());
                    }
                    progress?.Invoke($"bench decode: round {r + 1}: " + string.Join(", ", kernels.Select(k => $"{DecodeAttentionKernels.Name(k)} {times[k][^1]:F3} s"))
                        + $", sdpa one model after the other {sequential[^1]:F3} s"
                        + (peer is null ? "" : $", pytorch {peerRounds[^1]["best"]} {peerRounds[^1]["best_s"]} s"));
                }
                reference.DecodeAttention = rm.Transformer.DecodeAttention = DecodeAttention.Auto;

                double flops = 0;
                for (int s = 0; s < o.Steps; s++)
                {
                    long span = o.PromptLength + s + 1;
                    flops += DecodeStepFlops.Step(c, o.Batch, span, lmHead: true) + DecodeStepFlops.Step(c, o.Batch, span, lmHead: false);
                }
                var medians = kernels.ToDictionary(k => k, k => Stopwatches.Median(times[k]));
                double ceilingFlops = o.Steps * (DecodeStepFlops.Matmul(c, o.Batch, lmHead: true) + DecodeStepFlops.Matmul(c, o.Batch, lmHead: false));
                return new DecodeBenchmarkResult(
                    KernelSeconds: medians,
                    AutoKernel: autoKernel,
                    Lanes: lanes is not null,
                    SdpaSequentialSeconds: Stopwatches.Median(sequential),
                    StepGflop: flops / o.Steps / 1e9,
                    AchievedGflops: flops / medians[autoKernel] / 1e9,
                    CeilingGflops: ceilingFlops / Stopwatches.Median(ceilings) / 1e9,
                    SquareGemmGflops: SquareGemmGflops(device),
                    PyTorch: peer is null ? null : Summarize(peer.Info, peerRounds, ratios, flops, ceilingFlops));
            }
        }
        finally
        {
            try { Directory.Delete(work, true); } catch (IOException) { }
        }
    }

    // The step's matrix products with nothing around them: every projection of both models, with their own weights,
    // on inputs of the step's shape, once per step. What the decode step would cost if it were only its GEMMs, run
    // the way the step may run: sequentially on all threads, or (lanes) each model's products in its own lane.
    private static double MatmulCeilingSeconds(CausalTransformer reference, RewardModel rm, int batch, int steps, Device device, InferenceLanes? lanes)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var refWeights = StepWeights(reference, lmHead: true).ToList();
        var rmWeights = StepWeights(rm.Transformer, lmHead: false).ToList();
        var inputs = refWeights.Concat(rmWeights).Select(w => w.shape[1]).Distinct().ToDictionary(width => width, width => randn([batch, width], device: device));
        void Products(List<Tensor> weights)
        {
            using var stepScope = NewDisposeScope();
            foreach (var w in weights) nn.functional.linear(inputs[w.shape[1]], w);
        }
        var both = refWeights.Concat(rmWeights).ToList();
        var clock = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++) Products(both);
        double sequential = clock.Elapsed.TotalSeconds;
        if (lanes is null) return sequential;
        clock.Restart();
        for (int s = 0; s < steps; s++) lanes.Run(() => Products(refWeights), () => Products(rmWeights));
        return Math.Min(sequential, clock.Elapsed.TotalSeconds);
    }

    // The weight matrices a decode step multiplies by, in the order it does (as DecodeStepFlops.Gemms counts them).
    private static IEnumerable<Tensor> StepWeights(CausalTransformer model, bool lmHead)
    {
        foreach (var block in model.blocks)
        {
            yield return block.attn.q_proj.weight!;
            yield return block.attn.k_proj.weight!;
            yield return block.attn.v_proj.weight!;
            yield return block.attn.o_proj.weight!;
            if (block.mlp.gate_proj is { } gate) yield return gate.weight!;
            yield return block.mlp.up_proj.weight!;
            yield return block.mlp.down_proj.weight!;
        }
        if (lmHead) yield return model.lm_head?.weight ?? model.embed.weight!;
    }

    private static double SquareGemmGflops(Device device)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        const int n = 2048;
        var a = randn([n, n], device: device);
        var b = randn([n, n], device: device);
        a.matmul(b).sum().item<float>(); // warm-up
        double seconds = Stopwatches.MedianSeconds(3, (Action)(() => a.matmul(b).sum().item<float>()), warmup: 0);
        return 2.0 * n * n * n / seconds / 1e9;
    }

    // flops: every counted FLOP of the timed steps; ceilingFlops: those of their matrix products (the same on both sides).
    private static PyTorchPeerResult Summarize(JsonObject info, List<JsonObject> rounds, List<double> ratios, double flops, double ceilingFlops)
    {
        var kernels = rounds[0]["seconds"]!.AsObject().Select(p => p.Key).ToList();
        var medians = kernels.ToDictionary(k => k, k => Stopwatches.Median(rounds.Select(r => r["seconds"]![k]!.GetValue<double>())));
        string best = medians.MinBy(p => p.Value).Key;
        double ceilingSeconds = Stopwatches.Median(rounds.Select(r => r["matmul_ceiling_s"]?.GetValue<double>()
            ?? throw new InvalidOperationException($"--pytorch: the peer's round has no matmul_ceiling_s: {r.ToJsonString()}")));
        return new PyTorchPeerResult(info, medians, best, medians[best], Stopwatches.Median(ratios), ratios,
            AchievedGflops: flops / medians[best] / 1e9, CeilingGflops: ceilingFlops / ceilingSeconds / 1e9);
    }
}
