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
            return new JsonObject
            {
                ["rlhfgym"] = RuntimeInfo.PackageVersion,
                ["torchsharp"] = RuntimeInfo.TorchSharpVersion,
                ["torch"] = RuntimeInfo.LibTorchVersion,
                ["backend"] = RuntimeInfo.Backend,
                ["device"] = dev.ToString(),
                ["threads"] = get_num_threads(),
                ["cpu_vendor"] = MklDispatch.CpuVendor(),
                // Whether MKL was let pick its kernels by the CPU's features, and the branch it reports (null: no MKL).
                ["mkl_dispatch"] = MklDispatch.Status,
                ["mkl_kernels"] = MklDispatch.Kernels(),
                ["cuda_available"] = cuda.is_available(),
                ["cuda_devices"] = cuda.is_available() ? cuda.device_count() : 0,
                ["dotnet"] = Environment.Version.ToString(),
                ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
                ["probe_sum"] = probe.item<float>(),
            };
        });
        return command;
    }
}
