using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Benchmarks;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using RlhfGym.Models.Native;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym bench ...`: speed measured as ratios within one run (machines are shared and noisy).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "measure speed; figures are ratios taken within one run");
        bench.Subcommands.Add(Model());
        bench.Subcommands.Add(RewardModel());
        bench.Subcommands.Add(Env());
        bench.Subcommands.Add(Decode());
        bench.Subcommands.Add(Forward());
        bench.Subcommands.Add(Train());
        bench.Subcommands.Add(Transport());
        bench.Subcommands.Add(Chaos());
        return bench;
    }

    // Every bench verb that reports its intra-op threads also says which MKL branch ran the products, right after them:
    // the same figures on another branch are not comparable (docs/env.md).
    private static void SetBench(Command command, Func<System.CommandLine.ParseResult, Action<string>, JsonObject> body) =>
        VerbRunner.Set(command, (parse, progress) =>
        {
            var figures = body(parse, progress);
            if (figures.IndexOf("threads") is var at and >= 0) figures.Insert(at + 1, "mkl_kernels", MklDispatch.Kernels());
            return figures;
        });

    private static Command Model()
    {
        var device = CommonOptions.Device();
        var batch = new Option<int>("--batch") { Description = "batch rows for forward, decode and train", DefaultValueFactory = _ => 32 };
        var seqLen = new Option<int>("--seq-len") { Description = "sequence length for forward and train", DefaultValueFactory = _ => 128 };
        var genBatch = new Option<int>("--generation-batch") { Description = "rows for incremental-vs-recompute generation", DefaultValueFactory = _ => 8 };
        var newTokens = new Option<int>("--new-tokens") { Description = "tokens generated in the incremental-vs-recompute comparison", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "timed repeats (median reported)", DefaultValueFactory = _ => 3 };
        var shape = new SizedModelShape("vocabulary");
        var command = new Command("model", "transformer throughput (default d_model 256, 4 layers, 4 heads, vocab 8k) and KV-cache speedup")
        {
            device, batch, seqLen, genBatch, newTokens, repeats, shape.DModel, shape.Layers, shape.Heads, shape.Vocab,
        };
        SetBench(command, (parse, progress) =>
        {
            var options = new ModelBenchmarkOptions
            {
                Config = shape.Resolve(parse),
                Batch = CommonOptions.Positive(parse.GetValue(batch), "--batch"),
                SeqLen = CommonOptions.Positive(parse.GetValue(seqLen), "--seq-len"),
                GenerationBatch = CommonOptions.Positive(parse.GetValue(genBatch), "--generation-batch"),
                NewTokens = CommonOptions.Positive(parse.GetValue(newTokens), "--new-tokens"),
                Repeats = CommonOptions.Positive(parse.GetValue(repeats), "--repeats"),
                PromptLength = Math.Min(16, parse.GetValue(seqLen)),
            };
            if (options.SeqLen < 2 || options.SeqLen + 33L > options.Config.MaxSeqLen) // long: an int.MaxValue must not wrap past the check
                throw new ArgumentException($"--seq-len must be in 2..{options.Config.MaxSeqLen - 33}, got {options.SeqLen}");
            if ((long)options.PromptLength + options.NewTokens > options.Config.MaxSeqLen)
                throw new ArgumentException($"--new-tokens must be at most {options.Config.MaxSeqLen - options.PromptLength}, got {options.NewTokens}");
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var r = ModelBenchmark.Run(options, dev, step => progress($"bench model: {step}"));
            var c = options.Config;
            return new JsonObject
            {
                ["bench"] = "model",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["config"] = $"d{c.DModel} L{c.NLayers} H{c.NHeads} V{c.VocabSize}",
                ["batch"] = options.Batch,
                ["seq_len"] = options.SeqLen,
                ["forward_tokens_per_s"] = Math.Round(r.ForwardTokensPerSecond, 1),
                ["decode_ms_per_step"] = Math.Round(r.DecodeMsPerStep, 3),
                ["train_step_s"] = Math.Round(r.TrainStepSeconds, 4),
                ["generation_batch"] = options.GenerationBatch,
                ["new_tokens"] = options.NewTokens,
                ["generate_incremental_s"] = Math.Round(r.GenerateIncrementalSeconds, 4),
                ["generate_recompute_s"] = Math.Round(r.GenerateRecomputeSeconds, 4),
                ["incremental_speedup"] = Math.Round(r.IncrementalSpeedup, 2),
                ["greedy_agreement"] = Math.Round(r.GreedyAgreement, 4),
            };
        });
        return command;
    }

    private static Command RewardModel()
    {
        var device = CommonOptions.Device();
        var pairs = new Option<int>("--pairs") { Description = "preference pairs (two responses each)", DefaultValueFactory = _ => 1024 };
        var repeats = new Option<int>("--repeats") { Description = "timed repeats (median reported)", DefaultValueFactory = _ => 3 };
        var command = new Command("rm", "reward-model training tokens/s and the segmentation pass's cost relative to the RM forward") { device, pairs, repeats };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var r = RewardModelBenchmark.Run(CommonOptions.Positive(parse.GetValue(pairs), "--pairs"),
                CommonOptions.Positive(parse.GetValue(repeats), "--repeats"), dev, progress: progress);
            return new JsonObject
            {
                ["bench"] = "rm",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["pairs"] = r.Pairs,
                ["rm_train_tokens_per_s"] = Math.Round(r.TrainTokensPerSecond, 0),
                ["rm_forward_s"] = Math.Round(r.RmForwardSeconds, 4),
                ["segmentation_s"] = Math.Round(r.SegmentationSeconds, 4),
                ["segmentation_vs_rm_forward"] = Math.Round(r.SegmentationVsRmForward, 3),
            };
        });
        return command;
    }

    private static Command Env()
    {
        var device = CommonOptions.Device();
        var batch = new Option<int>("--batch") { Description = "sub-envs stepped together", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { Description = "tokens per episode", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "paired repeats (medians reported)", DefaultValueFactory = _ => 7 };
        var shapeOptions = new BenchModelShape();
        var command = new Command("env", "env step cost vs the raw incremental forward, vs prefix recomputation, and vs the score endpoint")
        {
            device, batch, steps, repeats, shapeOptions.DModel, shapeOptions.Layers, shapeOptions.Heads,
        };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            int t = EpisodeSteps(parse.GetValue(steps));
            var shape = shapeOptions.Resolve(parse);
            var r = EnvBenchmark.Run(CommonOptions.Positive(parse.GetValue(batch), "--batch"), t,
                CommonOptions.Positive(parse.GetValue(repeats), "--repeats"), dev, progress: progress, shape: shape);
            return new JsonObject
            {
                ["bench"] = "env",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["batch"] = r.Batch,
                ["steps"] = r.Steps,
                ["model"] = $"d{shape.DModel} L{shape.NLayers} H{shape.NHeads} V{r.VocabSize}",
                ["env_s"] = Math.Round(r.EnvSeconds, 4),
                ["raw_forward_s"] = Math.Round(r.RawSeconds, 4),
                ["raw_forward_gflops"] = Math.Round(r.RawGflops, 2),
                ["recompute_s"] = Math.Round(r.RecomputeSeconds, 4),
                ["score_s"] = Math.Round(r.ScoreSeconds, 4),
                ["step_overhead_ratio"] = Math.Round(r.StepOverheadRatio, 3),
                ["incremental_vs_recompute"] = Math.Round(r.IncrementalVsRecompute, 2),
                ["score_vs_step"] = Math.Round(r.ScoreVsStep, 2),
                ["env_tokens_per_s"] = Math.Round(r.TokensPerSecond, 0),
            };
        });
        return command;
    }

    private static Command Decode()
    {
        var device = CommonOptions.Device();
        var batch = new Option<int>("--batch") { Description = "rows decoded together", DefaultValueFactory = _ => 64 };
        var promptLength = new Option<int>("--prompt-len") { Description = "prompt tokens per row, prefilled untimed", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "decode steps timed", DefaultValueFactory = _ => 128 };
        var rounds = new Option<int>("--rounds") { Description = "rounds, each timing every kernel (medians reported)", DefaultValueFactory = _ => 3 };
        var kernels = new Option<string>("--kernels") { Description = "attention kernels timed side by side: a comma list of sdpa, matmul, reduce", DefaultValueFactory = _ => "sdpa,matmul,reduce" };
        var python = new Option<string?>("--pytorch") { Description = "a Python with torch (e.g. /usr/bin/python3): run bench/peer/decode_step.py in alternating rounds and print rlhfgym_vs_pytorch" };
        var pythonEnv = new Option<string[]>("--pytorch-env") { Description = "KEY=VALUE added to the PyTorch peer's environment (repeatable; e.g. LD_LIBRARY_PATH to pick a BLAS)", AllowMultipleArgumentsPerToken = false };
        var vocab = new Option<int>("--vocab") { Description = "vocabulary of both models (the reference's LM head)", DefaultValueFactory = _ => 470 };
        var shapeOptions = new BenchModelShape();
        var command = new Command("decode", "the decode step alone at any size: seconds per attention kernel, GFLOP/s against this machine's matmul ceiling, optionally against PyTorch eager")
        {
            device, batch, promptLength, steps, rounds, kernels, python, pythonEnv, vocab, shapeOptions.DModel, shapeOptions.Layers, shapeOptions.Heads,
        };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var shape = shapeOptions.Resolve(parse) with { VocabSize = CommonOptions.Positive(parse.GetValue(vocab), "--vocab") };
            var kernelList = (parse.GetValue(kernels) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(k => DecodeAttentionKernels.Parse(k, "--kernels")).Where(k => k != DecodeAttention.Auto).Distinct().ToList();
            if (kernelList.Count == 0) throw new ArgumentException("--kernels must name at least one of sdpa, matmul, reduce");
            var options = new DecodeBenchmarkOptions
            {
                Config = shape,
                Batch = CommonOptions.Positive(parse.GetValue(batch), "--batch"),
                PromptLength = CommonOptions.Positive(parse.GetValue(promptLength), "--prompt-len"),
                Steps = CommonOptions.Positive(parse.GetValue(steps), "--steps"),
                Rounds = CommonOptions.Positive(parse.GetValue(rounds), "--rounds"),
                Kernels = kernelList,
                Python = parse.GetValue(python),
                PythonEnvironment = parse.GetValue(pythonEnv) ?? [],
            };
            if ((long)options.PromptLength + options.Steps + 1 > 4096)
                throw new ArgumentException($"--prompt-len + --steps must be at most 4095, got {(long)options.PromptLength + options.Steps}");
            var r = DecodeBenchmark.Run(options, dev, progress);
            var json = new JsonObject
            {
                ["bench"] = "decode",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["model"] = $"d{shape.DModel} L{shape.NLayers} H{shape.NHeads} V{shape.VocabSize}",
                ["batch"] = options.Batch,
                ["prompt_len"] = options.PromptLength,
                ["steps"] = options.Steps,
                ["rounds"] = options.Rounds,
                ["kernel_s"] = new JsonObject(r.KernelSeconds.Select(p => KeyValuePair.Create(DecodeAttentionKernels.Name(p.Key), (JsonNode?)Math.Round(p.Value, 4)))),
                ["auto_kernel"] = DecodeAttentionKernels.Name(r.AutoKernel),
                ["decode_s"] = Math.Round(r.AutoSeconds, 4),
                ["lanes"] = r.Lanes,
                ["sdpa_sequential_s"] = Math.Round(r.SdpaSequentialSeconds, 4),
                ["speedup_vs_sdpa_sequential"] = Math.Round(r.SdpaSequentialSeconds / r.AutoSeconds, 3),
                ["ms_per_step"] = Math.Round(r.AutoSeconds / options.Steps * 1000, 3),
                ["step_gflop"] = Math.Round(r.StepGflop, 4),
                ["achieved_gflops"] = Math.Round(r.AchievedGflops, 2),
                ["matmul_ceiling_gflops"] = Math.Round(r.CeilingGflops, 2),
                ["fraction_of_ceiling"] = Math.Round(r.FractionOfCeiling, 3),
                ["square_gemm_gflops"] = Math.Round(r.SquareGemmGflops, 2),
            };
            if (r.PyTorch is { } peer)
            {
                json["pytorch"] = new JsonObject
                {
                    ["torch"] = peer.Info["torch"]?.DeepClone(),
                    ["threads"] = peer.Info["threads"]?.DeepClone(),
                    ["blas"] = peer.Info["blas"]?.DeepClone(),
                    ["kernel_s"] = new JsonObject(peer.KernelSeconds.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Math.Round(p.Value, 4)))),
                    ["best"] = peer.Best,
                    ["best_s"] = Math.Round(peer.BestSeconds, 4),
                    ["achieved_gflops"] = Math.Round(peer.AchievedGflops, 2),
                    ["matmul_ceiling_gflops"] = Math.Round(peer.CeilingGflops, 2),
                    ["fraction_of_ceiling"] = Math.Round(peer.FractionOfCeiling, 3),
                };
                json["rlhfgym_vs_pytorch"] = Math.Round(peer.RlhfGymVsPyTorch, 3);
                json["rlhfgym_vs_pytorch_rounds"] = new JsonArray(peer.RoundRatios.Select(x => (JsonNode?)Math.Round(x, 3)).ToArray());
                // Above 1: RlhfGym's BLAS multiplies the step's shapes faster than the peer's; below 1, slower.
                json["matmul_ceiling_vs_pytorch"] = Math.Round(r.CeilingGflops / peer.CeilingGflops, 3);
            }
            return json;
        });
        return command;
    }

    private static Command Forward()
    {
        var device = CommonOptions.Device();
        var shape = new SizedModelShape("vocabulary (the LM head of the logits check)");
        var batch = new Option<int>("--batch") { Description = "sequences scored together", DefaultValueFactory = _ => 16 };
        var seqLen = new Option<int>("--seq-len") { Description = "tokens per sequence", DefaultValueFactory = _ => 256 };
        var dtypes = new Option<string>("--dtypes") { Description = "a comma list of fp32, bf16, fp16, each timed with the same weights", DefaultValueFactory = _ => "fp32" };
        var repeats = new Option<int>("--repeats") { Description = "timed repeats (median reported)", DefaultValueFactory = _ => 5 };
        var gemmSize = new Option<int?>("--gemm-size") { Description = "side of the square matrix product timed as the ceiling (default 8192 on CUDA, 1024 on the CPU)" };
        var peak = new Option<double?>("--peak-tflops") { Description = "the device's quoted peak TFLOP/s for the dtype; prints mfu (e.g. 989 for an H100/H200 in dense bf16)" };
        var checkRows = new Option<int>("--check-rows") { Description = "rows (up to 128 tokens each) compared against the CPU in fp32", DefaultValueFactory = _ => 4 };
        var command = new Command("forward", "the reward model's scoring pass at any size and dtype: tokens/s, TFLOP/s against a square matrix product and a quoted peak, and its distance from the CPU in fp32")
        {
            device, shape.DModel, shape.Layers, shape.Heads, shape.Vocab, batch, seqLen, dtypes, repeats, gemmSize, peak, checkRows,
        };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var config = shape.Resolve(parse);
            int t = CommonOptions.Positive(parse.GetValue(seqLen), "--seq-len");
            config = config with { MaxSeqLen = Math.Max(config.MaxSeqLen, t) };
            var dtypeList = (parse.GetValue(dtypes) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(x => ForwardBenchmark.ParseDType(x, "--dtypes")).Distinct().ToList();
            if (dtypeList.Count == 0) throw new ArgumentException("--dtypes must name at least one of fp32, bf16, fp16");
            if (parse.GetValue(peak) is { } p && !(p > 0)) throw new ArgumentException($"--peak-tflops must be > 0, got {p}");
            var options = new ForwardBenchmarkOptions
            {
                Config = config,
                Batch = CommonOptions.Positive(parse.GetValue(batch), "--batch"),
                SeqLen = t,
                DTypes = dtypeList,
                Repeats = CommonOptions.Positive(parse.GetValue(repeats), "--repeats"),
                GemmSize = CommonOptions.Positive(parse.GetValue(gemmSize) ?? (dev.type == TorchSharp.DeviceType.CUDA ? 8192 : 1024), "--gemm-size"),
                PeakTflops = parse.GetValue(peak),
                CheckRows = CommonOptions.Positive(parse.GetValue(checkRows), "--check-rows"),
            };
            var r = ForwardBenchmark.Run(options, dev, progress);
            return new JsonObject
            {
                ["bench"] = "forward",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["model"] = $"d{config.DModel} L{config.NLayers} H{config.NHeads} V{config.VocabSize}",
                ["batch"] = options.Batch,
                ["seq_len"] = t,
                ["forward_gflop"] = Math.Round(r.ForwardGflop, 2),
                ["gemm_size"] = options.GemmSize,
                ["peak_tflops"] = options.PeakTflops,
                ["cpu_fp32_max_abs_logit"] = Math.Round(r.MaxAbsLogit, 4),
                ["dtypes"] = new JsonObject(r.DTypes.Select(x => KeyValuePair.Create(x.DType, (JsonNode?)new JsonObject
                {
                    ["seconds"] = Math.Round(x.Seconds, 5),
                    ["tokens_per_s"] = Math.Round(x.TokensPerSecond, 0),
                    ["tflops"] = SignificantDigits.Round(x.Tflops),
                    ["square_gemm_tflops"] = SignificantDigits.Round(x.SquareGemmTflops),
                    ["fraction_of_square_gemm"] = Math.Round(x.Tflops / x.SquareGemmTflops, 3),
                    ["mfu"] = x.Mfu is { } m ? Math.Round(m, 4) : null,
                    ["max_abs_value_diff_vs_cpu_fp32"] = x.MaxAbsValueDiff,
                    ["max_abs_logit_diff_vs_cpu_fp32"] = x.MaxAbsLogitDiff,
                }))),
            };
        });
        return command;
    }

    private static Command Train()
    {
        var device = CommonOptions.Device();
        var numEnvs = new Option<int>("--num-envs") { Description = "sub-envs (episodes per rollout)", DefaultValueFactory = _ => 64 };
        var iterations = new Option<int>("--iterations") { Description = "PPO iterations measured (after one warm-up)", DefaultValueFactory = _ => 4 };
        var shapeOptions = new BenchModelShape();
        var command = new Command("train", "PPO rollout and update tokens/s, and the share of rollout time spent in the env")
        {
            device, numEnvs, iterations, shapeOptions.DModel, shapeOptions.Layers, shapeOptions.Heads,
        };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            int n = CommonOptions.Positive(parse.GetValue(numEnvs), "--num-envs"), iters = CommonOptions.Positive(parse.GetValue(iterations), "--iterations");
            string dir = Path.Combine(Path.GetTempPath(), "rlhfgym-bench-train-" + Guid.NewGuid().ToString("N"));
            try
            {
                var shape = shapeOptions.Resolve(parse);
                var bundle = RandomBundle.Write(Path.Combine(dir, "bundle"), maxNewTokens: 64, seed: 1, shape);
                using var env = new TextVectorEnv(bundle, n, device: dev);
                var trainer = new Agents.Training.Trainer(env, Path.Combine(bundle.Directory, RlhfGym.Env.Bundles.EnvBundle.ReferenceDir), null, dev, progress);
                trainer.Run(Path.Combine(dir, "run"), new Agents.Training.TrainerOptions { Iterations = iters + 1, CheckpointEvery = 1000 }, resume: false);
                var rows = Agents.Training.MetricsLog.Read(Path.Combine(dir, "run")).Skip(1).ToList(); // the first iteration warms up
                double Mean(string key) => rows.Average(r => (double)r[key]!);
                double tokens = Mean("response_length") * n;
                return new JsonObject
                {
                    ["bench"] = "train",
                    ["device"] = dev.ToString(),
                    ["threads"] = get_num_threads(),
                    ["num_envs"] = n,
                    ["model"] = $"d{shape.DModel} L{shape.NLayers} H{shape.NHeads}",
                    ["iterations"] = rows.Count,
                    ["rollout_tokens_per_s"] = Math.Round(Mean("rollout_tokens_per_s"), 0),
                    ["update_tokens_per_s"] = Math.Round(rows.Average(r => tokens / (double)r["update_seconds"]!), 0),
                    ["env_time_share"] = Math.Round(Mean("env_time_share"), 3),
                };
            }
            finally
            {
                try { Directory.Delete(dir, true); } catch (IOException) { }
            }
        });
        return command;
    }

    private static Command Transport()
    {
        var device = CommonOptions.Device();
        var batch = new Option<int>("--batch") { Description = "sub-envs stepped together", DefaultValueFactory = _ => 64 };
        var steps = new Option<int>("--steps") { Description = "tokens per episode", DefaultValueFactory = _ => 128 };
        var repeats = new Option<int>("--repeats") { Description = "paired repeats (medians reported)", DefaultValueFactory = _ => 9 };
        var pings = new Option<int>("--pings") { Description = "small requests timed for the round-trip percentiles", DefaultValueFactory = _ => 2000 };
        var port = new Option<int?>("--port") { Description = "loopback port of the benchmark's server (default: a free one)" };
        var sameProcess = new Option<bool>("--same-process") { Description = "run the server inside this process instead of a `rlhfgym serve` child" };
        var clients = new Option<int?>("--clients") { Description = "N clients stepping concurrently against one server, compared with one client of N × --envs-per-client sub-envs, then scoring and resetting concurrently vs at once (prints concurrent_vs_single, score_concurrent_vs_single and reset_concurrent_vs_single instead of the in-process comparison)" };
        var envsPerClient = new Option<int>("--envs-per-client") { Description = "with --clients: sub-envs of each concurrent client", DefaultValueFactory = _ => 4 };
        var window = new Option<double?>("--batch-window-ms") { Description = "with --clients: the server's batching window (serve --batch-window-ms, 0..1000; default: the server's default, 0)" };
        var eosRate = new Option<double>("--eos-rate") { Description = "with --clients: chance (0..0.5) that an action is EOS; above 0, episodes end early and autoreset (next-step) starts new ones, so the run includes the new episodes' prefills", DefaultValueFactory = _ => 0 };
        var shapeOptions = new BenchModelShape();
        var command = new Command("transport", "remote (tcp loopback) vs in-process env throughput and the round trip of a small request; or, with --clients, many concurrent clients vs one")
        {
            device, batch, steps, repeats, pings, port, sameProcess, clients, envsPerClient, eosRate, window, shapeOptions.DModel, shapeOptions.Layers, shapeOptions.Heads,
        };
        SetBench(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            int t = EpisodeSteps(parse.GetValue(steps));
            var shape = shapeOptions.Resolve(parse);
            int p = parse.GetValue(port) ?? RlhfGym.Transport.LoopbackPort.Free();
            if (p is < 1 or > 65535) throw new ArgumentException($"--port must be in 1..65535, got {p}");
            // An option of the other form would be silently ignored: refused instead.
            if (parse.GetValue(clients) is not null && parse.GetResult(batch) is { Implicit: false })
                throw new ArgumentException("--batch applies without --clients only (with --clients the single client has --clients × --envs-per-client sub-envs)");
            if (parse.GetValue(clients) is not null && parse.GetResult(pings) is { Implicit: false })
                throw new ArgumentException("--pings applies without --clients only");
            if (parse.GetValue(clients) is null && parse.GetResult(envsPerClient) is { Implicit: false })
                throw new ArgumentException("--envs-per-client applies with --clients only");
            if (parse.GetValue(clients) is { } n)
                return ConcurrentTransport(progress, dev, t, shape, p, n, parse.GetValue(envsPerClient), parse.GetValue(repeats), parse.GetValue(sameProcess),
                    parse.GetValue(eosRate), parse.GetValue(window));
            if (parse.GetValue(eosRate) != 0) throw new ArgumentException("--eos-rate applies with --clients only");
            if (parse.GetValue(window) is not null) throw new ArgumentException("--batch-window-ms applies with --clients only");
            ServeProcess? server = null;
            var r = RlhfGym.Benchmarks.TransportBenchmark.Run(CommonOptions.Positive(parse.GetValue(batch), "--batch"), t,
                CommonOptions.Positive(parse.GetValue(repeats), "--repeats"), CommonOptions.Positive(parse.GetValue(pings), "--pings"), p, dev, progress: progress,
                startServer: parse.GetValue(sameProcess) ? null : (bundle, address) => server = ServeProcess.Start(bundle, address, dev.ToString(), progress), shape: shape);
            return new JsonObject
            {
                ["bench"] = "transport",
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["batch"] = r.Batch,
                ["steps"] = r.Steps,
                ["inprocess_s"] = Math.Round(r.InProcessSeconds, 4),
                ["remote_s"] = Math.Round(r.RemoteSeconds, 4),
                ["remote_vs_inprocess"] = Math.Round(r.RemoteVsInProcess, 3),
                ["remote_tokens_per_s"] = Math.Round(r.RemoteTokensPerSecond, 0),
                ["ping_p50_ms"] = Math.Round(r.PingP50Ms, 3),
                ["ping_p99_ms"] = Math.Round(r.PingP99Ms, 3),
                ["pings"] = r.Pings,
                ["server"] = parse.GetValue(sameProcess) ? "same process" : "separate process",
                ["server_openmp_wait"] = parse.GetValue(sameProcess) ? "this process's" : server?.OpenMpSetting ?? "not logged by the server",
                ["model"] = $"d{shape.DModel} L{shape.NLayers} H{shape.NHeads}",
            };
        });
        return command;
    }

    private static JsonObject ConcurrentTransport(Action<string> progress, Device dev, int steps, TransformerConfig shape, int port,
        int clients, int envsPerClient, int repeats, bool sameProcess, double eosRate, double? windowMs)
    {
        if (windowMs is < 0 or > 1000 || (windowMs is { } w && double.IsNaN(w))) throw new ArgumentException($"--batch-window-ms must be in 0..1000, got {windowMs}");
        if (windowMs is not null && sameProcess) throw new ArgumentException("--batch-window-ms applies to a `serve` child, not with --same-process");
        if (eosRate is < 0 or > 0.5 || double.IsNaN(eosRate)) throw new ArgumentException($"--eos-rate must be in 0..0.5, got {eosRate}");
        if (clients is < 1 or > 1000) throw new ArgumentException($"--clients must be in 1..1000, got {clients}");
        CommonOptions.Positive(envsPerClient, "--envs-per-client");
        CommonOptions.Positive(repeats, "--repeats");
        // The single client holds all N·k sub-envs in one session, so N·k must fit one session (MaxNumEnvs).
        if ((long)clients * envsPerClient > 4096)
            throw new ArgumentException($"--clients × --envs-per-client must be at most 4096 (one client holds them all), got {(long)clients * envsPerClient}");
        // The server must hold the N sessions and the single client's one, and N·k sub-envs in one session.
        string[] serveArgs = ["--device", dev.ToString(), "--max-sessions", $"{clients + 1}", "--max-num-envs", $"{clients * envsPerClient}",
            .. windowMs is { } ms ? new[] { "--batch-window-ms", ms.ToString(System.Globalization.CultureInfo.InvariantCulture) } : []];
        var r = RlhfGym.Benchmarks.TransportBenchmark.RunConcurrent(clients, envsPerClient, steps, repeats, port, dev, eosRate: eosRate, progress: progress,
            startServer: sameProcess ? null : (bundle, address) => ServeProcess.Start(address, ["--env", bundle, .. serveArgs], progress), shape: shape);
        return new JsonObject
        {
            ["bench"] = "transport",
            ["device"] = dev.ToString(),
            ["threads"] = get_num_threads(),
            ["clients"] = r.Clients,
            ["envs_per_client"] = r.EnvsPerClient,
            ["steps"] = r.Steps,
            ["eos_rate"] = eosRate,
            ["batch_window_ms"] = windowMs is { } shown ? shown : "server default",
            ["single_s"] = Math.Round(r.SingleSeconds, 4),
            ["concurrent_s"] = Math.Round(r.ConcurrentSeconds, 4),
            ["single_tokens_per_s"] = Math.Round(r.SingleTokensPerSecond, 0),
            ["concurrent_tokens_per_s"] = Math.Round(r.ConcurrentTokensPerSecond, 0),
            ["concurrent_vs_single"] = Math.Round(r.ConcurrentVsSingle, 3),
            ["rounds"] = new JsonArray(r.Ratios.Select(x => (JsonNode?)Math.Round(x, 3)).ToArray()),
            ["batched_step_share"] = Math.Round(r.BatchedStepShare, 3),
            ["sessions_per_batched_step"] = Math.Round(r.SessionsPerBatchedStep, 2),
            ["server_ms_per_step"] = new JsonObject { ["single"] = Phases(r.SingleServerPhases), ["concurrent"] = Phases(r.ConcurrentServerPhases) },
            ["score_single_s"] = Math.Round(r.ScoreSingleSeconds, 4),
            ["score_concurrent_s"] = Math.Round(r.ScoreConcurrentSeconds, 4),
            ["score_concurrent_vs_single"] = Math.Round(r.ScoreConcurrentVsSingle, 3),
            ["reset_single_s"] = Math.Round(r.ResetSingleSeconds, 4),
            ["reset_concurrent_s"] = Math.Round(r.ResetConcurrentSeconds, 4),
            ["reset_concurrent_vs_single"] = Math.Round(r.ResetConcurrentVsSingle, 3),
            ["server"] = sameProcess ? "same process" : "separate process",
            ["model"] = $"d{shape.DModel} L{shape.NLayers} H{shape.NHeads}",
        };
    }

    // Where the server's time went per step of a side (bench/TransportBenchmark.cs, ServerPhases), in milliseconds.
    private static JsonObject Phases(RlhfGym.Benchmarks.ServerPhases p) => new()
    {
        ["waiting"] = Math.Round(p.WaitingMs, 3),
        ["gather"] = Math.Round(p.GatherMs, 3),
        ["compute"] = Math.Round(p.ComputeMs, 3),
        ["reply"] = Math.Round(p.ReplyMs, 3),
        ["bursts"] = Math.Round(p.BurstsPerStep, 2),
    };

    private static Command Chaos()
    {
        var servers = new Option<int>("--servers") { Description = "`rlhfgym serve` processes the sharded env spreads over (2..16)", DefaultValueFactory = _ => 3 };
        var seconds = new Option<double>("--seconds") { Description = "how long the run steps (1..3600)", DefaultValueFactory = _ => 60 };
        var numEnvs = new Option<int>("--num-envs") { Description = "sub-envs of the sharded env", DefaultValueFactory = _ => 12 };
        var between = new Option<double>("--mean-between-failures") { Description = "mean seconds between failures (exponential; 0.1..3600)", DefaultValueFactory = _ => 4 };
        var downtime = new Option<double>("--downtime") { Description = "seconds a failed server stays down before it is started again (0..3600)", DefaultValueFactory = _ => 2 };
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "token budget of an episode", DefaultValueFactory = _ => 16 };
        var seed = CommonOptions.Seed();
        var command = new Command("chaos", "a sharded env stepped while its servers are killed (SIGKILL) or drained (SIGTERM) at random and restarted: steps, episodes, lost episodes, errors and hangs")
        {
            servers, seconds, numEnvs, between, downtime, maxNewTokens, seed,
        };
        SetBench(command, (parse, progress) =>
        {
            int n = parse.GetValue(servers);
            if (n is < 2 or > 16) throw new ArgumentException($"--servers must be in 2..16, got {n}");
            double run = parse.GetValue(seconds), mean = parse.GetValue(between), down = parse.GetValue(downtime);
            if (!(run is >= 1 and <= 3600)) throw new ArgumentException($"--seconds must be in 1..3600, got {run}");
            if (!(mean is >= 0.1 and <= 3600)) throw new ArgumentException($"--mean-between-failures must be in 0.1..3600, got {mean}");
            if (!(down is >= 0 and <= 3600)) throw new ArgumentException($"--downtime must be in 0..3600, got {down}");
            int envs = CommonOptions.Positive(parse.GetValue(numEnvs), "--num-envs");
            int budget = CommonOptions.Positive(parse.GetValue(maxNewTokens), "--max-new-tokens");
            if (budget > 160) throw new ArgumentException($"--max-new-tokens must be at most 160, got {budget}");
            var r = ChaosRun.Run(n, envs, TimeSpan.FromSeconds(run), TimeSpan.FromSeconds(mean), TimeSpan.FromSeconds(down), budget, parse.GetValue(seed), progress);
            return new JsonObject
            {
                ["bench"] = "chaos",
                ["servers"] = r.Servers,
                ["num_envs"] = r.NumEnvs,
                ["seconds"] = Math.Round(r.Seconds, 1),
                ["steps"] = r.Steps,
                ["episodes"] = r.Episodes,
                ["lost_episodes"] = r.LostEpisodes,
                ["kills"] = r.Kills,
                ["terminations"] = r.Terminations,
                ["restarts"] = r.Restarts,
                ["restart_failures"] = r.RestartFailures,
                ["servers_lost"] = r.ServersLost,
                ["errors"] = r.Errors,
                ["hangs"] = r.Hangs,
                ["hang_threshold_s"] = ChaosRun.HangSeconds,
                ["max_step_s"] = Math.Round(r.MaxStepSeconds, 3),
                ["step_p99_ms"] = Math.Round(r.P99StepMs, 1),
                ["error_messages"] = new JsonArray(r.ErrorMessages.Select(m => (JsonNode?)m).ToArray()),
            };
        });
        return command;
    }

    // Episodes fit PhraseWorld-shaped models' context (prompt + budget + 1 ≤ 512).
    private static int EpisodeSteps(int steps)
    {
        int t = CommonOptions.Positive(steps, "--steps");
        return t <= 480 ? t : throw new ArgumentException($"--steps must be at most 480, got {t}");
    }

    /// <summary>--d-model, --layers, --heads and --vocab of a standalone model (default d256 L4 H4 V8192, context 512),
    /// for the benches that build a transformer without a bundle.</summary>
    private sealed class SizedModelShape(string vocabDescription)
    {
        public readonly Option<int> DModel = new("--d-model") { Description = "model width", DefaultValueFactory = _ => 256 };
        public readonly Option<int> Layers = new("--layers") { Description = "layers", DefaultValueFactory = _ => 4 };
        public readonly Option<int> Heads = new("--heads") { Description = "attention heads (must divide --d-model)", DefaultValueFactory = _ => 4 };
        public readonly Option<int> Vocab = new("--vocab") { Description = vocabDescription, DefaultValueFactory = _ => 8192 };

        public TransformerConfig Resolve(ParseResult parse)
        {
            int d = CommonOptions.Positive(parse.GetValue(DModel), "--d-model"), h = CommonOptions.Positive(parse.GetValue(Heads), "--heads");
            var config = new TransformerConfig
            {
                VocabSize = CommonOptions.Positive(parse.GetValue(Vocab), "--vocab"),
                DModel = d,
                NLayers = CommonOptions.Positive(parse.GetValue(Layers), "--layers"),
                NHeads = h,
                NKvHeads = h,
                DFf = 4 * d,
                MaxSeqLen = 512,
            };
            config.Validate("--d-model/--layers/--heads/--vocab");
            return config;
        }
    }

    /// <summary>--d-model and --layers over PhraseWorld's model shape, for the benches that build a random bundle.</summary>
    private sealed class BenchModelShape
    {
        public readonly Option<int?> DModel = new("--d-model") { Description = "model width of the benchmark's reference LM and RM (default: PhraseWorld's 64)" };
        public readonly Option<int?> Layers = new("--layers") { Description = "layers of both models (default: PhraseWorld's 2)" };
        public readonly Option<int?> Heads = new("--heads") { Description = "attention heads of both models (default: PhraseWorld's 4; must divide --d-model)" };

        public RlhfGym.Models.Transformer.TransformerConfig Resolve(ParseResult parse)
        {
            var shape = PhraseWorldModels.Config(1);
            if (parse.GetValue(DModel) is { } d) shape = shape with { DModel = CommonOptions.Positive(d, "--d-model"), DFf = 4 * d };
            if (parse.GetValue(Layers) is { } l) shape = shape with { NLayers = CommonOptions.Positive(l, "--layers") };
            if (parse.GetValue(Heads) is { } h) shape = shape with { NHeads = CommonOptions.Positive(h, "--heads"), NKvHeads = h };
            shape.Validate("--d-model/--layers/--heads");
            return shape;
        }
    }
}
