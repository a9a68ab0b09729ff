using RlhfGym.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

public sealed record ModelBenchmarkOptions
{
    public TransformerConfig Config { get; init; } = new() { VocabSize = 8192, DModel = 256, NLayers = 4, NHeads = 4, NKvHeads = 4, DFf = 1024, MaxSeqLen = 512 };
    public int Batch { get; init; } = 32;
    public int SeqLen { get; init; } = 128;
    /// <summary>Rows used for the incremental-vs-recompute generation comparison (recomputing is quadratic).</summary>
    public int GenerationBatch { get; init; } = 8;
    public int PromptLength { get; init; } = 16;
    public int NewTokens { get; init; } = 128;
    public int Repeats { get; init; } = 3;
    public long Seed { get; init; } = 1;
}

public sealed record ModelBenchmarkResult(
    double ForwardTokensPerSecond,
    double DecodeMsPerStep,
    double TrainStepSeconds,
    double GenerateIncrementalSeconds,
    double GenerateRecomputeSeconds,
    double IncrementalSpeedup,
    double GreedyAgreement);

/// <summary>
/// `rlhfgym bench model`: throughput of the transformer's three paths, and — measured in the same run, so the ratio
/// is meaningful on a shared machine — greedy generation through the KV cache against recomputing the prefix.
/// </summary>
public static class ModelBenchmark
{
    public static ModelBenchmarkResult Run(ModelBenchmarkOptions o, Device device, Action<string>? progress = null)
    {
        random.manual_seed(o.Seed);
        using var model = new CausalTransformer(o.Config, device);
        var tokens = randint(0, o.Config.VocabSize, [o.Batch, o.SeqLen], ScalarType.Int64, device);

        progress?.Invoke("full forward");
        model.eval();
        double forward = Stopwatches.MedianSeconds(o.Repeats, () =>
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            model.Logits(model.Forward(tokens)).sum().item<float>();
        });

        progress?.Invoke("decode steps");
        double decode = Stopwatches.MedianSeconds(o.Repeats, () =>
        {
            using var _ = no_grad();
            using var cache = model.NewCache(o.Batch, o.SeqLen + 33);
            using var scope = NewDisposeScope();
            model.Prefill(tokens, [], cache);
            var next = tokens.select(1, 0);
            for (int s = 0; s < 32; s++) next = model.Logits(model.DecodeStep(next, cache)).argmax(-1);
            next.sum().item<long>();
        }) / 32;

        progress?.Invoke("train steps");
        model.train();
        using var optimizer = optim.AdamW(model.parameters(), lr: 1e-4);
        double train = Stopwatches.MedianSeconds(o.Repeats, () =>
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = model.Logits(model.Forward(tokens.narrow(1, 0, o.SeqLen - 1)));
            var loss = nn.functional.cross_entropy(logits.reshape(-1, o.Config.VocabSize), tokens.narrow(1, 1, o.SeqLen - 1).reshape(-1));
            loss.backward();
            optimizer.step();
            loss.item<float>();
        });
        model.eval();

        progress?.Invoke("generation: incremental vs recompute");
        var prompt = tokens.narrow(0, 0, o.GenerationBatch).narrow(1, 0, o.PromptLength);
        Tensor? incrementalOut = null, recomputeOut = null;
        double incremental = Stopwatches.MedianSeconds(o.Repeats, () => { incrementalOut?.Dispose(); incrementalOut = GenerateIncremental(model, prompt, o.NewTokens); });
        double recompute = Stopwatches.MedianSeconds(1, () => { recomputeOut?.Dispose(); recomputeOut = GenerateRecompute(model, prompt, o.NewTokens); }, warmup: 0);
        // Both are greedy, so they should emit the same tokens (a near-tie in the logits may rarely flip one).
        double agreement = incrementalOut!.eq(recomputeOut!).to_type(ScalarType.Float32).mean().item<float>();
        incrementalOut.Dispose();
        recomputeOut!.Dispose();
        tokens.Dispose();

        return new ModelBenchmarkResult(
            ForwardTokensPerSecond: o.Batch * o.SeqLen / forward,
            DecodeMsPerStep: decode * 1000,
            TrainStepSeconds: train,
            GenerateIncrementalSeconds: incremental,
            GenerateRecomputeSeconds: recompute,
            IncrementalSpeedup: recompute / incremental,
            GreedyAgreement: agreement);
    }

    /// <summary>Greedy generation through the KV cache: one prefill, then one token per step.</summary>
    public static Tensor GenerateIncremental(CausalTransformer model, Tensor prompt, int newTokens)
    {
        using var _ = no_grad();
        long b = prompt.shape[0], p = prompt.shape[1];
        using var cache = model.NewCache((int)b, (int)(p + newTokens));
        var outTokens = empty(b, newTokens, ScalarType.Int64, model.Device);
        using var scope = NewDisposeScope();
        var next = model.Logits(model.Prefill(prompt, [], cache).select(1, p - 1)).argmax(-1);
        for (int s = 0; s < newTokens; s++)
        {
            outTokens.select(1, s).copy_(next);
            if (s + 1 < newTokens) next = model.Logits(model.DecodeStep(next, cache)).argmax(-1);
        }
        return outTokens;
    }

    /// <summary>Greedy generation without a cache: a full forward of the whole prefix for every new token.</summary>
    public static Tensor GenerateRecompute(CausalTransformer model, Tensor prompt, int newTokens)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var seq = prompt;
        for (int s = 0; s < newTokens; s++)
        {
            var hidden = model.Forward(seq);
            var next = model.Logits(hidden.select(1, seq.shape[1] - 1)).argmax(-1);
            seq = cat([seq, next.unsqueeze(1)], 1);
        }
        return seq.narrow(1, prompt.shape[1], newTokens).MoveToOuterDisposeScope();
    }
}
