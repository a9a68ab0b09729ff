using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Rotary position embedding in the "rotate half" layout (as Llama checkpoints use): the head dimension is split
/// into two halves that rotate as (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin). Tables are precomputed once for
/// every position up to max_seq_len so a decode step only gathers its rows.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _cos; // (max_seq_len, head_dim)
    private readonly Tensor _sin;

    public RotaryEmbedding(int headDim, int maxSeqLen, double theta, Device device)
    {
        using var scope = NewDisposeScope();
        var inv = 1.0 / pow(theta, arange(0, headDim, 2, ScalarType.Float64) / headDim);
        var angles = outer(arange(maxSeqLen, ScalarType.Float64), inv);           // (T, D/2)
        var full = cat([angles, angles], dim: -1);                                 // (T, D)
        _cos = full.cos().to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();
        _sin = full.sin().to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();
    }

    /// <summary>Rotate x (B, H, T, D) whose rows all start at position 0.</summary>
    public Tensor ApplyFromStart(Tensor x)
    {
        long t = x.shape[2];
        return Rotate(x, _cos.narrow(0, 0, t), _sin.narrow(0, 0, t));
    }

    /// <summary>Rotate x (B, H, 1, D) where row b sits at position positions[b].</summary>
    public Tensor ApplyAt(Tensor x, Tensor positions)
    {
        long b = x.shape[0];
        var cos = _cos.index_select(0, positions).view(b, 1, 1, -1);
        var sin = _sin.index_select(0, positions).view(b, 1, 1, -1);
        return Rotate(x, cos, sin);
    }

    private static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat([-x2, x1], dim: -1);
        return x * cos.to_type(x.dtype) + rotated * sin.to_type(x.dtype);
    }

    public void Dispose()
    {
        _cos.Dispose();
        _sin.Dispose();
    }
}
