using static TorchSharp.torch;

namespace RlhfGym.Models.Checkpoints;

/// <summary>
/// What every loaded weight must be before it is copied into a model: floating point (a copy into a float parameter
/// would silently convert integers or booleans) and finite (a NaN weight makes every output NaN, far from its cause).
/// </summary>
public static class WeightCheck
{
    /// <summary>Returns <paramref name="tensor"/>, or throws <see cref="CheckpointFormatException"/> naming the file and tensor.</summary>
    public static Tensor Usable(string file, string name, Tensor tensor)
    {
        if (!tensor.is_floating_point())
            throw new CheckpointFormatException(file, name, $"dtype {tensor.dtype}: weights must be floating point (F32, F16, BF16 or F64)");
        using var finite = isfinite(tensor).all();
        if (!finite.item<bool>()) throw new CheckpointFormatException(file, name, "holds NaN or infinite values");
        return tensor;
    }
}
