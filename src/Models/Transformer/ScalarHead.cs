using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Per-position scalar head for reward and value models: Linear(H, 1, bias=false), weights drawn from
/// N(0, std = 1/(H+1)) as OpenRLHF does for its value head. Hidden (..., H) → (...).
/// </summary>
public sealed class ScalarHead : nn.Module<Tensor, Tensor>
{
    public Linear score;

    public ScalarHead(int dModel, Device? device = null) : base(nameof(ScalarHead))
    {
        score = nn.Linear(dModel, 1, hasBias: false);
        using (no_grad()) nn.init.normal_(score.weight!, 0, 1.0 / (dModel + 1));
        RegisterComponents();
        if (device is not null) this.to(device);
    }

    public override Tensor forward(Tensor hidden) => score.forward(hidden).squeeze(-1);
}
