using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>Resolves the --device option: auto (CUDA when TorchSharp reports it, else CPU), cpu or cuda[:N].</summary>
public static class DeviceSelector
{
    public static Device Resolve(string option)
    {
        string value = (option ?? "auto").Trim().ToLowerInvariant();
        if (value == "auto") return cuda.is_available() ? CUDA : CPU;
        if (value == "cpu") return CPU;
        if (value == "cuda" || value.StartsWith("cuda:"))
        {
            if (!cuda.is_available())
                throw new ArgumentException("--device cuda was requested but TorchSharp reports no CUDA device (is the cuda or external backend in use?): " + CudaLoadError());
            return new Device(value);
        }
        throw new ArgumentException($"--device must be auto, cpu or cuda[:N]; got '{option}'");
    }

    // is_available() only says false; initializing the device type says why (the libraries TorchSharp tried to load).
    private static string CudaLoadError()
    {
        try
        {
            InitializeDeviceType(TorchSharp.DeviceType.CUDA);
            return "libtorch's CUDA support loaded but sees no GPU";
        }
        catch (Exception e) { return e.Message; }
    }
}
