using RlhfGym.Benchmarks;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Cli.Tests;

public class BenchForwardTests
{
    [Fact]
    public void Bench_forward_reports_each_dtype_against_its_gemm_the_peak_and_the_cpu()
    {
        // Checks the verb end to end on the CPU, not how fast anything is. On the CPU the fp32 run is the reference
        // itself, so its differences are exactly 0 only if the weights were copied whole; bf16 must move them a little.
        var r = CliRunner.Run("bench", "forward", "--d-model", "32", "--layers", "1", "--heads", "2", "--vocab", "64", "--batch", "2",
            "--seq-len", "16", "--dtypes", "fp32,bf16", "--repeats", "1", "--gemm-size", "32", "--peak-tflops", "0.5", "--json");
        Assert.True(r.ExitCode == 0, r.Describe());
        var json = r.LastJson();
        Assert.Equal("d32 L1 H2 V64", (string?)json["model"]);
        var config = new TransformerConfig { VocabSize = 64, DModel = 32, NLayers = 1, NHeads = 2, NKvHeads = 2, DFf = 128 };
        Assert.Equal(Math.Round(ForwardBenchmark.Flops(config, 2, 16) / 1e9, 2), (double)json["forward_gflop"]!);
        var dtypes = json["dtypes"]!.AsObject();
        Assert.Equal(["fp32", "bf16"], dtypes.Select(p => p.Key));
        var fp32 = dtypes["fp32"]!;
        Assert.Equal(0.0, (double)fp32["max_abs_value_diff_vs_cpu_fp32"]!);
        Assert.Equal(0.0, (double)fp32["max_abs_logit_diff_vs_cpu_fp32"]!);
        var bf16 = dtypes["bf16"]!;
        Assert.InRange((double)bf16["max_abs_logit_diff_vs_cpu_fp32"]!, 1e-6, 0.1);
        foreach (var (_, d) in dtypes)
        {
            // Seconds are printed to 5 places: every rate derived from them must lie within that rounding.
            double seconds = (double)d!["seconds"]!, slow = seconds + 0.000005, fast = seconds - 0.000005;
            Assert.InRange((double)d["tokens_per_s"]!, 32 / slow - 1, 32 / fast + 1);
            Assert.True((double)d["square_gemm_tflops"]! > 0);
            double flop = ForwardBenchmark.Flops(config, 2, 16);
            Assert.InRange((double)d["mfu"]!, flop / slow / 1e12 / 0.5 - 0.0001, flop / fast / 1e12 / 0.5 + 0.0001);
        }
    }

    [Fact]
    public void Bench_forward_prints_no_mfu_without_a_peak()
    {
        var r = CliRunner.Run("bench", "forward", "--d-model", "16", "--layers", "1", "--heads", "2", "--vocab", "32", "--batch", "1",
            "--seq-len", "8", "--repeats", "1", "--gemm-size", "16", "--json");
        Assert.True(r.ExitCode == 0, r.Describe());
        var json = r.LastJson();
        Assert.Null(json["peak_tflops"]);
        Assert.Null(json["dtypes"]!["fp32"]!["mfu"]);
    }

    [Theory]
    [InlineData("--dtypes", "fp8", "'fp8'")]
    [InlineData("--dtypes", ",", "at least one")]
    [InlineData("--peak-tflops", "0", "--peak-tflops")]
    [InlineData("--heads", "3", "n_heads")]
    [InlineData("--seq-len", "0", "--seq-len")]
    [InlineData("--gemm-size", "-4", "--gemm-size")]
    [InlineData("--device", "tpu", "--device")]
    public void Bench_forward_names_a_bad_option(string option, string value, string expected)
    {
        var options = new Dictionary<string, string>
        {
            ["--d-model"] = "16",
            ["--layers"] = "1",
            ["--heads"] = "2",
            ["--vocab"] = "32",
            ["--batch"] = "1",
            ["--seq-len"] = "8",
            ["--repeats"] = "1",
        };
        options[option] = value;
        var r = CliRunner.Run(["bench", "forward", .. options.SelectMany(p => new[] { p.Key, p.Value }), "--json"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected, (string)r.LastJson()["error"]!);
    }
}
