using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace RlhfGym.Models.Native;

/// <summary>
/// Lets the MKL inside libtorch pick its kernels by what the CPU can do rather than by who made it.
/// </summary>
/// <remarks>
/// MKL asks <c>mkl_serv_intel_cpu()</c> (and <c>mkl_serv_intel_cpu_true()</c>) whether it runs on an Intel CPU and, on any other, runs its generic kernels
/// whatever the instruction set: on this project's AMD EPYC (AVX-512) MKL reported "Intel(R) Architecture processors"
/// and multiplied decode-shaped matrices at 131 GFLOP/s; told yes, it reported its AVX-512 branch and reached 242
/// (docs/benchmarks.md). libtorch exports those functions and calls them through its PLT, so a library loaded with
/// RTLD_GLOBAL before the first MKL call answers in its place, as LD_PRELOAD would. The library is written on the fly
/// (<see cref="ReturnOneLibrary"/>), loaded, and its file removed. MKL still checks the CPU's feature flags for each
/// branch, so it only uses instructions the CPU has.
///
/// Done once per process, when this assembly loads (a module initializer), on Linux x86-64 with a non-Intel CPU, unless
/// <see cref="SwitchVariable"/> is 0. If something had already called MKL, MKL keeps its first answer.
/// <see cref="Status"/> says what happened and <see cref="Kernels"/> which branch MKL reports.
/// </remarks>
public static class MklDispatch
{
    /// <summary>Set to 0 to leave MKL's vendor check alone (its generic kernels on non-Intel CPUs).</summary>
    public const string SwitchVariable = "RLHFGYM_MKL_BY_FEATURES";

    /// <summary>
    /// The MKL functions that answer "is this an Intel CPU?": both exported by libtorch_cpu and called through its PLT,
    /// and both must say yes (with only the first, MKL picked its SSE2 branch on this project's AMD CPU).
    /// </summary>
    public static readonly IReadOnlyList<string> VendorChecks = ["mkl_serv_intel_cpu", "mkl_serv_intel_cpu_true"];

    /// <summary>
    /// applied (MKL told the CPU counts as Intel), switched off, not needed (an Intel CPU), not applicable (not Linux
    /// x86-64), or failed: the loader's reason.
    /// </summary>
    public static string Status { get; private set; } = "not applicable";

#pragma warning disable CA2255 // a library's module initializer: the answer must be in place before anything calls MKL
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnAssemblyLoad() => Status = Apply();

    private static string Apply()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64 || !X86Base.IsSupported)
            return "not applicable";
        if (Environment.GetEnvironmentVariable(SwitchVariable) == "0") return "switched off";
        if (CpuVendor() == "GenuineIntel") return "not needed";

        string? lastError = null;
        foreach (var directory in new[] { Path.GetTempPath(), AppContext.BaseDirectory })
        {
            string path = Path.Combine(directory, $"rlhfgym-mkl-by-features-{Environment.ProcessId}-{Guid.NewGuid():N}.so");
            try
            {
                File.WriteAllBytes(path, ReturnOneLibrary.Build(VendorChecks));
                // Global, so the loader searches it before libtorch_cpu's own definition; the mapping outlives the file.
                if (Dl.dlopen(path, Dl.Now | Dl.Global) != IntPtr.Zero) return "applied";
                lastError = Dl.Error();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException or EntryPointNotFoundException)
            {
                lastError = e.Message;
            }
            finally
            {
                try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
        return "failed: " + lastError;
    }

    /// <summary>The 12-character vendor string CPUID leaf 0 gives (GenuineIntel, AuthenticAMD, ...).</summary>
    public static string CpuVendor()
    {
        if (!X86Base.IsSupported) return "unknown";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> parts = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(parts));
    }

    /// <summary>
    /// The code branch MKL reports it runs (its version record's processor field, e.g. "Intel(R) Advanced Vector
    /// Extensions 512 (Intel(R) AVX-512) ..."), or null when libtorch is not loaded yet or carries no MKL. Asking makes
    /// MKL settle its dispatch, so call it after libtorch is loaded, as any torch call does. Read once, then kept.
    /// </summary>
    public static string? Kernels() => _kernels ??= ReadKernels();

    private static string? _kernels;

    private static string? ReadKernels()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            var torchCpu = Dl.dlopen("libtorch_cpu.so", Dl.Now | Dl.NoLoad); // only if already loaded
            if (torchCpu == IntPtr.Zero) return null;
            var getVersion = Dl.dlsym(torchCpu, "mkl_serv_get_version");
            if (getVersion == IntPtr.Zero) return null;
            MklVersion version = default;
            unsafe { ((delegate* unmanaged<MklVersion*, void>)getVersion)(&version); }
            return Marshal.PtrToStringAnsi(version.Processor);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    // MKL's MKLVersion: four ints (major, minor, update, patch), then four C strings.
    [StructLayout(LayoutKind.Sequential)]
    private struct MklVersion
    {
        public int Major, Minor, Update, Patch;
        public IntPtr ProductStatus, Build, Processor, Platform;
    }

    // dlopen with flags: .NET's NativeLibrary.Load opens libraries locally, which would not interpose. libdl.so.2 has the
    // functions on every glibc: its own before 2.34, libc's (found through its dependency) since.
    private static class Dl
    {
        public const int Now = 0x2, NoLoad = 0x4, Global = 0x100;

        [DllImport("libdl.so.2", CharSet = CharSet.Ansi, BestFitMapping = false)] public static extern IntPtr dlopen(string path, int flags);
        [DllImport("libdl.so.2", CharSet = CharSet.Ansi, BestFitMapping = false)] public static extern IntPtr dlsym(IntPtr handle, string name);
        [DllImport("libdl.so.2")] private static extern IntPtr dlerror();

        public static string Error() => Marshal.PtrToStringAnsi(dlerror()) ?? "dlopen failed without a message";
    }
}
