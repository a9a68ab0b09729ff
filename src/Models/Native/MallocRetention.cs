using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace RlhfGym.Models.Native;

/// <summary>
/// Keeps the memory libtorch frees on the CPU in glibc's heap for its next tensors, instead of handing it back to the
/// kernel and faulting it in again page by page.
/// </summary>
/// <remarks>
/// libtorch allocates CPU tensors with glibc's malloc. glibc serves a large block from a fresh mmap (above a threshold
/// that starts at 128 KiB) and trims the top of its heap once more than twice that is free, so a forward that makes and
/// drops the same large activations every call pays a page fault for every 4 KiB of them, every call. Profiled on
/// this project's 2-core VM, page faults took 17% of an env server's request thread, and scoring 64 pairs took
/// 0.16–0.30 s with glibc's defaults against 0.066–0.076 s with the memory kept (docs/benchmarks.md).
///
/// Set once per process when this assembly loads (a module initializer), on Linux with glibc, unless
/// <see cref="SwitchVariable"/> is 0: blocks up to <see cref="MmapThresholdBytes"/> come from the heap, and up to
/// <see cref="TrimThresholdBytes"/> of free heap top is kept. The cost is memory: a process keeps what its largest
/// forwards used (resident size stays near its peak). Numbers are unchanged: this only decides where blocks come from.
/// </remarks>
public static class MallocRetention
{
    /// <summary>Set to 0 to leave glibc's allocation settings as they are.</summary>
    public const string SwitchVariable = "RLHFGYM_MALLOC_RETAIN";

    /// <summary>The largest block served from the heap: glibc's maximum on 64-bit (32 MiB).</summary>
    public const int MmapThresholdBytes = 32 << 20;

    /// <summary>Free memory at the heap's top kept before glibc returns it to the kernel (256 MiB).</summary>
    public const int TrimThresholdBytes = 256 << 20;

    /// <summary>applied, switched off, not applicable (not Linux with glibc), or failed: which setting glibc refused.</summary>
    public static string Status { get; private set; } = "not applicable";

#pragma warning disable CA2255 // a library's module initializer: set before libtorch's first tensors
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnAssemblyLoad() => Status = Apply();

    private static string Apply()
    {
        if (!OperatingSystem.IsLinux()) return "not applicable";
        if (Environment.GetEnvironmentVariable(SwitchVariable) == "0") return "switched off";
        try
        {
            // mallopt answers 1 when it took the value; setting the mmap threshold also stops glibc adjusting it.
            if (mallopt(MmapThreshold, MmapThresholdBytes) != 1) return $"failed: glibc refused M_MMAP_THRESHOLD {MmapThresholdBytes}";
            if (mallopt(TrimThreshold, TrimThresholdBytes) != 1) return $"failed: glibc refused M_TRIM_THRESHOLD {TrimThresholdBytes}";
            return "applied";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return "not applicable"; // a C library without glibc's mallopt (musl)
        }
    }

    private const int TrimThreshold = -1, MmapThreshold = -3; // glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD

    [DllImport("libc.so.6")]
    private static extern int mallopt(int param, int value);
}
