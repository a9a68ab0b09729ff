namespace RlhfGym.Cli.Tests;

/// <summary>The build must ship a libLibTorchSharp.so whose GLIBCXX_3.4.32 requirement is weak (build/TorchSharpNativeFix.targets).</summary>
public class NativeLibraryFixTests
{
    [Fact]
    public void Output_copy_of_LibTorchSharp_marks_GLIBCXX_3_4_32_weak()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(path)) return; // external backend: libtorch and the binding come from elsewhere
        ElfVersionNeeds.AssertGlibcxx3432IsWeak(path);
    }
}
