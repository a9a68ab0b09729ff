using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>Root-mean-square norm (TorchSharp has none): x / sqrt(mean(x²) + eps) · weight, computed in fp32.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Scalar _eps; // held, not converted per call (HeldScalars)
    public Parameter weight;

    public RmsNorm(long dim, double eps) : base(nameof(RmsNorm))
    {
        _eps = eps.ToScalar();
        weight = new Parameter(ones(dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        bool fp32 = x.dtype == ScalarType.Float32;
        var x32 = fp32 ? x : x.to_type(ScalarType.Float32);
        var normed = x32 * x32.square().mean([-1L], keepdim: true).add_(_eps).rsqrt_();
        return (fp32 ? normed.mul_(weight) : normed.to_type(x.dtype) * weight).MoveToOuterDisposeScope();
    }
}
