using System.Runtime.InteropServices;

namespace RlhfGym.Cli;

/// <summary>
/// `rlhfgym serve` sets a short OpenMP spin before libtorch loads. By default libgomp's worker threads spin for
/// 300,000 iterations (milliseconds) after every parallel region before they sleep. A server steps, replies, then waits
/// for the next request, so its workers spin straight through that wait and take the cores that the socket threads
/// of both ends need: on 2 cores that added 0.3–1 ms to every remote step (docs/benchmarks.md). 3,000 iterations
/// (~0.1 ms) still covers the microsecond gaps between the ops of one step, so a step runs at full speed, and the
/// workers sleep between requests.
/// </summary>
/// <remarks>
/// libgomp reads its environment once, when it is loaded, so this must run before the first TorchSharp call of the
/// process. A user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins. Only Linux ships libtorch with libgomp.
/// </remarks>
public static class ServerOpenMpSpin
{
    public const string Variable = "GOMP_SPINCOUNT";
    public const string ServerValue = "3000";

    /// <summary>What <see cref="Apply"/> did, for the log.</summary>
    public enum Outcome { Set, UserSetting, TooLate, NotLinux }

    public static Outcome Apply() => Apply(OperatingSystem.IsLinux(), Environment.GetEnvironmentVariable, IsOpenMpLoaded(), SetNative);

    /// <summary>The decision, with the process's facts passed in (tests).</summary>
    public static Outcome Apply(bool linux, Func<string, string?> getenv, bool openMpLoaded, Action<string, string> setenv)
    {
        if (!linux) return Outcome.NotLinux;
        if (getenv(Variable) is not null || getenv("OMP_WAIT_POLICY") is not null) return Outcome.UserSetting;
        if (openMpLoaded) return Outcome.TooLate;
        setenv(Variable, ServerValue);
        return Outcome.Set;
    }

    // libgomp is mapped into the process once libtorch has been loaded.
    private static bool IsOpenMpLoaded()
    {
        try { return File.ReadAllText("/proc/self/maps").Contains("libgomp", StringComparison.Ordinal); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    // Called first thing in `serve`, before the host starts its threads, so no native getenv runs concurrently.
    // The C environment, which libgomp reads (Environment.SetEnvironmentVariable only changes .NET's copy), and .NET's
    // copy too, so child processes see the same value.
    private static void SetNative(string name, string value)
    {
        if (setenv(name, value, 0) != 0) throw new InvalidOperationException($"setenv({name}) failed with errno {Marshal.GetLastPInvokeError()}");
        Environment.SetEnvironmentVariable(name, value);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int setenv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
