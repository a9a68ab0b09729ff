using System.Runtime.InteropServices;
using RlhfGym.Models.Native;
using RlhfGym.Tests;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class MklDispatchTests
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int IntFunction();

    [Fact]
    public void The_written_library_loads_and_each_named_function_returns_one()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return; // an x86-64 ELF
        using var dir = new TempDir();
        string path = dir.File("return-one.so");
        File.WriteAllBytes(path, ReturnOneLibrary.Build(["rlhfgym_test_first", "rlhfgym_test_second", "rlhfgym_test_third"]));

        var library = NativeLibrary.Load(path); // the real dynamic loader
        try
        {
            foreach (var name in new[] { "rlhfgym_test_first", "rlhfgym_test_second", "rlhfgym_test_third" })
            {
                var function = Marshal.GetDelegateForFunctionPointer<IntFunction>(NativeLibrary.GetExport(library, name));
                Assert.Equal(1, function());
            }
            Assert.False(NativeLibrary.TryGetExport(library, "rlhfgym_test_fourth", out _));
        }
        finally
        {
            NativeLibrary.Free(library);
        }
    }

    [Fact]
    public void Names_the_library_cannot_hold_are_refused_by_name()
    {
        Assert.Contains("at least one", Assert.Throws<ArgumentException>(() => ReturnOneLibrary.Build([])).Message);
        Assert.Contains("'has space'", Assert.Throws<ArgumentException>(() => ReturnOneLibrary.Build(["ok", "has space"])).Message);
        Assert.Contains("plain ASCII", Assert.Throws<ArgumentException>(() => ReturnOneLibrary.Build(["nul\0inside"])).Message);
        Assert.Contains("one page", Assert.Throws<ArgumentException>(() => ReturnOneLibrary.Build([new string('x', 5000)])).Message);
    }

    [Fact]
    public void The_dispatch_status_follows_the_cpu_vendor_and_the_switch()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            Assert.Equal("not applicable", MklDispatch.Status);
            return;
        }
        string expected = Environment.GetEnvironmentVariable(MklDispatch.SwitchVariable) == "0" ? "switched off"
            : MklDispatch.CpuVendor() == "GenuineIntel" ? "not needed"
            : "applied";
        Assert.Equal(expected, MklDispatch.Status);
        Assert.Equal(12, MklDispatch.CpuVendor().Length);
    }

    [Fact]
    public void Matrix_products_through_the_dispatched_kernels_match_a_float64_sum_to_fp32_rounding()
    {
        // Whatever branch MKL runs, the step's products must be right: a decode-shaped product against the same
        // product summed in float64 by elementwise ops (no BLAS).
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(7);
        var x = randn([64, 256], generator: generator);
        var w = randn([1024, 256], generator: generator);
        var product = nn.functional.linear(x, w);
        var reference = (x.to(float64).unsqueeze(1) * w.to(float64).unsqueeze(0)).sum(2);
        double worst = (product.to(float64) - reference).abs().max().item<double>();
        Assert.True(worst < 1e-3, $"largest difference {worst} (values are sums of 256 products of unit normals)");
        Assert.NotNull(MklDispatch.Kernels()); // the CPU libtorch carries MKL and reports its branch
    }
}
