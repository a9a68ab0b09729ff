using RlhfGym.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record ForwardBenchmarkOptions
{
    public required TransformerConfig Config { get; init; }
    public int Batch { get; init; } = 16;
    public int SeqLen { get; init; } = 256;
    /// <summary>The dtypes timed, each with the same weights (fp32 masters cast down).</summary>
    public IReadOnlyList<ScalarType> DTypes { get; init; } = [ScalarType.Float32];
    public int Repeats { get; init; } = 5;
    /// <summary>Side of the square matrix product timed as this device's ceiling for each dtype.</summary>
    public int GemmSize { get; init; } = 1024;
    /// <summary>The device's quoted peak in TFLOP/s for model-FLOP utilization; null prints no MFU.</summary>
    public double? PeakTflops { get; init; }
    /// <summary>Rows (of at most 128 tokens) whose outputs are compared with the same weights on the CPU in fp32.</summary>
    public int CheckRows { get; init; } = 4;
    public long Seed { get; init; } = 1;
}

/// <summary>One dtype's figures; the differences are against the same weights run on the CPU in fp32.</summary>
public sealed record ForwardDTypeResult(
    string DType,
    double Seconds,
    double TokensPerSecond,
    double Tflops,
    double SquareGemmTflops,
    double? Mfu,
    double MaxAbsValueDiff,
    double MaxAbsLogitDiff);

public sealed record ForwardBenchmarkResult(double ForwardGflop, double MaxAbsLogit, IReadOnlyList<ForwardDTypeResult> DTypes);

/// <summary>
/// `rlhfgym bench forward`: the reward model's scoring pass — a whole right-aligned batch through the backbone and
/// the scalar head, as the score endpoint and RM training run it — in tokens/s and TFLOP/s per dtype, against a
/// square matrix product of the same dtype timed in the same run, and (with a quoted peak) as model-FLOP
/// utilization. The same weights also run on the CPU in fp32, so the printed differences say how far this device's
/// numerics (and bf16) move the RM's values and the LM's logits.
/// </summary>
public static class ForwardBenchmark
{
    public static ForwardBenchmarkResult Run(ForwardBenchmarkOptions o, Device device, Action<string>? progress = null)
    {
        var c = o.Config;
        random.manual_seed(o.Seed);
        using var masterModel = new CausalTransformer(c, CPU);
        using var masterHead = new ScalarHead(c.DModel, CPU);
        masterModel.eval();
        using var tokensCpu = randint(0, c.VocabSize, [o.Batch, o.SeqLen], ScalarType.Int64);
        int checkRows = Math.Min(o.CheckRows, o.Batch), checkLen = Math.Min(128, o.SeqLen);
        using var checkTokens = tokensCpu.narrow(0, 0, checkRows).narrow(1, 0, checkLen).contiguous();

        progress?.Invoke("cpu fp32 reference outputs");
        var (refValues, refLogits) = Outputs(masterModel, masterHead, checkTokens);
        double maxAbsLogit = refLogits.abs().max().item<float>();

        double flop = Flops(c, o.Batch, o.SeqLen);
        var results = new List<ForwardDTypeResult>();
        using var tokens = tokensCpu.to(device);
        foreach (var dtype in o.DTypes)
        {
            string name = DTypeName(dtype);
            progress?.Invoke($"{name}: copying the weights to {device}");
            using var model = new CausalTransformer(c, device);
            using var head = new ScalarHead(c.DModel, device);
            CopyParameters(masterModel, model);
            CopyParameters(masterHead, head);
            model.to(dtype);
            head.to(dtype);
            model.eval();

            progress?.Invoke($"{name}: scoring forward, {o.Batch}×{o.SeqLen} tokens");
            double seconds = Stopwatches.MedianSeconds(o.Repeats, () =>
            {
                using var _ = no_grad();
                using var scope = NewDisposeScope();
                head.forward(model.Forward(tokens)).sum().to_type(ScalarType.Float32).item<float>(); // .item waits for the device
            });

            var (values, logits) = Outputs(model, head, checkTokens.to(device));
            double valueDiff = values.cpu().to_type(ScalarType.Float32).sub(refValues).abs().max().item<float>();
            double logitDiff = logits.cpu().to_type(ScalarType.Float32).sub(refLogits).abs().max().item<float>();
            values.Dispose();
            logits.Dispose();

            progress?.Invoke($"{name}: square matrix product {o.GemmSize}³");
            double gemm = SquareGemmTflops(o.GemmSize, dtype, device, o.Repeats);
            double tflops = flop / seconds / 1e12;
            results.Add(new ForwardDTypeResult(name, seconds, o.Batch * o.SeqLen / seconds, tflops, gemm,
                o.PeakTflops is { } peak ? tflops / peak : null, valueDiff, logitDiff));
        }
        refValues.Dispose();
        refLogits.Dispose();
        return new ForwardBenchmarkResult(flop / 1e9, maxAbsLogit, results);
    }

    /// <summary>
    /// FLOPs of one scoring pass over batch × seqLen tokens: every matrix product (a multiply-add is 2) plus causal
    /// attention, where position t attends over t + 1 keys. Norms, rotary and activations are left out.
    /// </summary>
    public static double Flops(TransformerConfig c, long batch, long seqLen) =>
        DecodeStepFlops.Matmul(c, batch * seqLen, lmHead: false)
        + 2.0 * batch * seqLen * c.DModel                                    // the scalar head
        + DecodeStepFlops.Attention(c, batch, seqLen * (seqLen + 1) / 2);

    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "fp32",
        ScalarType.BFloat16 => "bf16",
        ScalarType.Float16 => "fp16",
        _ => throw new ArgumentException($"unsupported dtype {dtype}"),
    };

    public static ScalarType ParseDType(string text, string option) => text.Trim().ToLowerInvariant() switch
    {
        "fp32" or "float32" => ScalarType.Float32,
        "bf16" or "bfloat16" => ScalarType.BFloat16,
        "fp16" or "float16" => ScalarType.Float16,
        _ => throw new ArgumentException($"{option}: unknown dtype '{text}' (expected fp32, bf16 or fp16)"),
    };

    // The RM's per-token values and the LM's logits for the same hidden states, fp32 on the host.
    private static (Tensor Values, Tensor Logits) Outputs(CausalTransformer model, ScalarHead head, Tensor tokens)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var hidden = model.Forward(tokens);
        var values = head.forward(hidden).to_type(ScalarType.Float32);
        var logits = model.Logits(hidden).to_type(ScalarType.Float32);
        return (values.MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }

    private static void CopyParameters(nn.Module source, nn.Module target)
    {
        using var _ = no_grad();
        var from = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in target.named_parameters()) p.copy_(from[name]);
    }

    private static double SquareGemmTflops(int n, ScalarType dtype, Device device, int repeats)
    {
        using var a = randn([n, n], dtype, device);
        using var b = randn([n, n], dtype, device);
        const int products = 10; // one product is ~1 ms on a GPU: time several between two waits
        double seconds = Stopwatches.MedianSeconds(repeats, () =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            Tensor last = a;
            for (int i = 0; i < products; i++) last = a.matmul(b);
            last[0, 0].to_type(ScalarType.Float32).item<float>();
        });
        return 2.0 * n * n * n * products / seconds / 1e12;
    }
}
