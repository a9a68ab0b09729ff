using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using RlhfGym.Models.Native;

namespace RlhfGym.Cli.Tests;

public class InfoAndContractTests
{
    [Fact]
    public void Info_json_reports_device_and_torch_on_the_last_line()
    {
        var r = CliRunner.Run("info", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.Equal("cpu", (string?)json["device"]);
        Assert.StartsWith("2.", (string?)json["torch"]);
        Assert.Equal("cpu", (string?)json["backend"]);
        Assert.Equal(2.0, (double)json["probe_sum"]!);
    }

    [Fact]
    public void Info_reports_the_mkl_branch_the_cpu_can_run_and_the_switch_turns_the_dispatch_off()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        var json = CliRunner.Run("info", "--json").LastJson();
        string vendor = (string)json["cpu_vendor"]!;
        Assert.Equal(vendor == "GenuineIntel" ? "not needed" : "applied", (string?)json["mkl_dispatch"]);
        // With the vendor check answered, MKL runs the branch of the CPU's widest vector unit.
        string kernels = (string)json["mkl_kernels"]!;
        if (Avx512F.IsSupported) Assert.Contains("AVX-512", kernels);
        else if (Avx2.IsSupported) Assert.Contains("AVX2", kernels);

        var off = CliRunner.Run(["info", "--json"], new Dictionary<string, string> { [MklDispatch.SwitchVariable] = "0" }).LastJson();
        Assert.Equal("switched off", (string?)off["mkl_dispatch"]);
        // Left to itself, MKL (2024.0 in libtorch 2.10) runs no AVX branch on a CPU not made by Intel. If this fails
        // after a libtorch update, MKL has started treating other vendors by their features and the dispatch may go.
        if (vendor != "GenuineIntel") Assert.DoesNotContain("AVX", (string)off["mkl_kernels"]!);
    }

    [Fact]
    public void Info_reports_that_glibc_keeps_freed_memory_and_the_switch_turns_it_off()
    {
        if (!OperatingSystem.IsLinux()) return;
        Assert.Equal("applied", (string?)CliRunner.Run("info", "--json").LastJson()["malloc_retention"]);
        var off = CliRunner.Run(["info", "--json"], new Dictionary<string, string> { [MallocRetention.SwitchVariable] = "0" }).LastJson();
        Assert.Equal("switched off", (string?)off["malloc_retention"]);
    }

    [Fact]
    public void Unavailable_device_is_a_clear_error_with_a_json_line()
    {
        var r = CliRunner.Run("info", "--device", "cuda", "--json");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--device cuda", (string?)r.LastJson()["error"]);
        var bad = CliRunner.Run("info", "--device", "tpu", "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("auto, cpu or cuda", (string?)bad.LastJson()["error"]);
    }

    [Fact]
    public void Bench_model_reports_the_incremental_speedup()
    {
        // A small run: this checks the verb works end to end, not how fast it is (speed is never a test).
        var r = CliRunner.Run("bench", "model", "--batch", "2", "--seq-len", "8", "--generation-batch", "1",
            "--new-tokens", "4", "--repeats", "1", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var json = r.LastJson();
        Assert.True((double)json["incremental_speedup"]! > 0);
        Assert.Equal(1.0, (double)json["greedy_agreement"]!);
        var bad = CliRunner.Run("bench", "model", "--batch", "0", "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--batch", (string?)bad.LastJson()["error"]);
    }

    [Fact]
    public void Bench_rm_reports_the_segmentation_cost_ratio()
    {
        var r = CliRunner.Run("bench", "rm", "--pairs", "8", "--repeats", "1", "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.True((double)r.LastJson()["segmentation_vs_rm_forward"]! > 0);
    }

    [Fact]
    public void Demo_plots_render_to_png()
    {
        using var dir = new TempDir();
        var rows = new Dictionary<string, List<System.Text.Json.Nodes.JsonObject>>
        {
            ["segment"] = [new() { ["iteration"] = 1, ["kl"] = 0.5 }, new() { ["iteration"] = 2, ["kl"] = 0.8 }],
        };
        string path = dir.File("kl.png");
        RlhfGym.Experiments.Demo.DemoPlots.MetricOverIterations(path, "kl", "KL", "nats", rows, 0.1, "SFT");
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 1000);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
    }
}
