using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>The block's MLP: GELU (up → gelu → down; exact or tanh-approximated) or SwiGLU (silu(gate) · up → down).</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly MlpKind _kind;
    public Linear up_proj, down_proj;
    public Linear? gate_proj;

    public FeedForward(TransformerConfig c) : base(nameof(FeedForward))
    {
        _kind = c.Mlp;
        up_proj = nn.Linear(c.DModel, c.DFf, hasBias: c.Bias);
        down_proj = nn.Linear(c.DFf, c.DModel, hasBias: c.Bias);
        if (c.Mlp == MlpKind.SwiGlu) gate_proj = nn.Linear(c.DModel, c.DFf, hasBias: c.Bias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => _kind switch
    {
        MlpKind.SwiGlu => down_proj.forward(nn.functional.silu(gate_proj!.forward(x)) * up_proj.forward(x)),
        // GPT-2's "gelu_new": 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), one fused kernel.
        MlpKind.GeluTanh => down_proj.forward(nn.functional.gelu(up_proj.forward(x), GELU.Approximate.tanh)),
        _ => down_proj.forward(nn.functional.gelu(up_proj.forward(x))),
    };
}
