using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Rotary position embedding in the "rotate half" layout (as Llama checkpoints use): the head dimension is split
/// into halves that rotate as (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin). Tables are precomputed for every
/// position up to max_seq_len; a forward gathers its rows once and every layer reuses them.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _cos;       // (max_seq_len, head_dim)
    private readonly Tensor _sinSigned; // (max_seq_len, head_dim): [-sin, +sin], so rotate-half becomes a roll

    public RotaryEmbedding(int headDim, int maxSeqLen, double theta, Device device, RopeScaling? scaling = null)
    {
        using var scope = NewDisposeScope();
        var frequencies = Enumerable.Range(0, headDim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headDim)).ToArray();
        if (scaling is not null) frequencies = scaling.Apply(frequencies);
        var inv = tensor(frequencies, ScalarType.Float64);
        var angles = outer(arange(maxSeqLen, ScalarType.Float64), inv);           // (T, D/2)
        _cos = cat([angles.cos(), angles.cos()], -1).to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();
        _sinSigned = cat([-angles.sin(), angles.sin()], -1).to_type(ScalarType.Float32).to(device).DetachFromDisposeScope();
    }

    /// <summary>Angles for positions 0..t-1, shared by every row: two (T, D) views.</summary>
    public RotaryAngles FromStart(long t) => new(_cos.narrow(0, 0, t), _sinSigned.narrow(0, 0, t));

    /// <summary>Angles for one position per row: two (B, 1, 1, D) tensors.</summary>
    public RotaryAngles At(Tensor positions)
    {
        long b = positions.shape[0];
        return new(_cos.index_select(0, positions).view(b, 1, 1, -1), _sinSigned.index_select(0, positions).view(b, 1, 1, -1));
    }

    public void Dispose()
    {
        _cos.Dispose();
        _sinSigned.Dispose();
    }
}

/// <summary>Cos and signed-sin tables broadcastable against (B, H, T, D).</summary>
public readonly record struct RotaryAngles(Tensor? Cos, Tensor? SinSigned)
{
    /// <summary>No rotation: for models with learned positions.</summary>
    public static RotaryAngles None => default;

    /// <summary>x·cos + roll(x, D/2)·[-sin, sin]: the rotate-half rotation in three ops.</summary>
    public Tensor Apply(Tensor x)
    {
        if (Cos is null || SinSigned is null) return x;
        var rolled = x.roll(x.shape[^1] / 2, -1);
        bool same = x.dtype == Cos.dtype; // tables are fp32; convert only for bf16/fp16 activations
        return (x * (same ? Cos : Cos.to_type(x.dtype))).addcmul_(rolled, same ? SinSigned : SinSigned.to_type(x.dtype), HeldScalars.One);
    }
}
