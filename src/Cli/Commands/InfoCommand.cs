using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Models;
using RlhfGym.Models.Native;
using static TorchSharp.torch;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym info`: versions, backend, device, threads, MKL kernels, CUDA.</summary>
public static class InfoCommand
{
    public static Command Create()
    {
        var device = CommonOptions.Device();
        var command = new Command("info", "show package and libtorch versions, backend, device and threads") { device };
        VerbRunner.Set(command, (parse, _) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            using var probe = ones(2, device: dev).sum(); // proves libtorch loads and computes on that device
            var info = RuntimeInfo.Machine(dev); // rlhfgym, torch, device, threads, cpu_vendor, mkl_kernels: what run.json keeps
            info["torchsharp"] = RuntimeInfo.TorchSharpVersion;
            info["backend"] = RuntimeInfo.Backend;
            // Whether MKL was let pick its kernels by the CPU's features (docs/env.md).
            info["mkl_dispatch"] = MklDispatch.Status;
            // Whether glibc keeps freed tensor memory for reuse (docs/env.md, "Memory glibc keeps").
            info["malloc_retention"] = MallocRetention.Status;
            info["cuda_available"] = cuda.is_available();
            info["cuda_devices"] = cuda.is_available() ? cuda.device_count() : 0;
            info["dotnet"] = Environment.Version.ToString();
            info["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription;
            info["probe_sum"] = probe.item<float>();
            return info;
        });
        return command;
    }
}
