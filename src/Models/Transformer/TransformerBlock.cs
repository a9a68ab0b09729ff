using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class TransformerBlock : nn.Module
{
    public nn.Module<Tensor, Tensor> attn_norm, mlp_norm;
    public CausalSelfAttention attn;
    public FeedForward mlp;

    public TransformerBlock(TransformerConfig c) : base(nameof(TransformerBlock))
    {
        attn_norm = Norms.Create(c);
        mlp_norm = Norms.Create(c);
        attn = new CausalSelfAttention(c);
        mlp = new FeedForward(c);
        RegisterComponents();
    }

    public Tensor Sequence(Tensor x, RotaryAngles rope, Tensor? mask, Tensor? cacheK, Tensor? cacheV)
    {
        x = x + attn.Sequence(attn_norm.forward(x), rope, mask, cacheK, cacheV);
        return x + mlp.forward(mlp_norm.forward(x));
    }

    internal Tensor Step(Tensor x, RotaryAngles rope, DecodeRows rows, Tensor cacheK, Tensor cacheV, Tensor keyBias, long span,
        DecodeAttention kernel)
    {
        x = x + attn.Step(attn_norm.forward(x), rope, rows, cacheK, cacheV, keyBias, span, kernel);
        return x + mlp.forward(mlp_norm.forward(x));
    }
}

internal static class Norms
{
    public static nn.Module<Tensor, Tensor> Create(TransformerConfig c) => c.Norm == NormKind.RmsNorm
        ? new RmsNorm(c.DModel, c.NormEps)
        : nn.LayerNorm(c.DModel, c.NormEps);
}
