using System.Reflection;
using System.Text.Json.Nodes;
using RlhfGym.Models.Native;
using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>What this build runs on: package and libtorch versions, backend, threads, MKL branch, CUDA.</summary>
public static class RuntimeInfo
{
    private static string? Metadata(string key) =>
        typeof(RuntimeInfo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;

    public static string PackageVersion =>
        typeof(RuntimeInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// cpu, cuda or external: the MSBuild property TorchBackend the application was built with. Libraries reference
    /// TorchSharp only and the application picks the libtorch runtime, so the value is read from the application's
    /// assembly (stamped by build/TorchSharpBackend.targets); "unknown" when the application was built elsewhere.
    /// </summary>
    public static string Backend =>
        (Assembly.GetEntryAssembly() is { } entry ? BackendStampedOn(entry) : null)
        ?? AppDomain.CurrentDomain.GetAssemblies().Select(BackendStampedOn).FirstOrDefault(b => b is not null)
        ?? "unknown";

    private static string? BackendStampedOn(Assembly assembly) =>
        assembly.IsDynamic ? null : assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == "TorchBackend")?.Value;

    public static string TorchSharpVersion => Metadata("TorchSharpVersion") ?? "unknown";

    /// <summary>The libtorch version TorchSharp reports (e.g. 2.10.0).</summary>
    public static string LibTorchVersion
    {
        get
        {
            var v = __version__;
            return v.EndsWith(".0") && v.Count(c => c == '.') == 3 ? v[..^2] : v;
        }
    }

    /// <summary>
    /// What decides a run's figures besides its seed and options: package and libtorch versions, the device, intra-op
    /// threads, the CPU's vendor and the MKL branch in use (docs/env.md). `rlhfgym info` prints it; run.json keeps it.
    /// </summary>
    public static JsonObject Machine(Device device) => new()
    {
        ["rlhfgym"] = PackageVersion,
        ["torch"] = LibTorchVersion,
        ["device"] = device.ToString(),
        ["threads"] = get_num_threads(),
        ["cpu_vendor"] = MklDispatch.CpuVendor(),
        ["mkl_kernels"] = MklDispatch.Kernels(),
    };
}
