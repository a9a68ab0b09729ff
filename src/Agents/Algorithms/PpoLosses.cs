using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>PPO's losses on padded (B, T) tensors with a response mask (1 on actions, 0 on padding).</summary>
public static class PpoLosses
{
    /// <summary>
    /// Clipped surrogate: −min(ρA, clip(ρ, 1−ε, 1+ε)A), ρ = exp(logπ − logπ_old); masked mean per sequence, then mean
    /// over the batch. Also returns the clip fraction and the approximate KL E[(ρ − 1) − log ρ] (masked token means).
    /// </summary>
    public static (Tensor Loss, double ClipFraction, double ApproxKl) Policy(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask, double clip)
    {
        var logRatio = logProbs - oldLogProbs;
        var ratio = logRatio.exp();
        var unclipped = ratio * advantages;
        var clipped = ratio.clamp(1 - clip, 1 + clip) * advantages;
        var perToken = -minimum(unclipped, clipped);
        var loss = MaskedMeanPerSequence(perToken, mask).mean();
        using var _ = no_grad();
        double tokens = mask.sum().item<float>();
        double clipFraction = ((ratio - 1).abs().gt(clip).to_type(ScalarType.Float32) * mask).sum().item<float>() / tokens;
        double approxKl = (((ratio - 1) - logRatio) * mask).sum().item<float>() / tokens;
        return (loss, clipFraction, approxKl);
    }

    /// <summary>0.5·max((V_clip − G)², (V − G)²) with V_clip = V_old + clip(V − V_old, ±c); masked per sequence, then batch mean.</summary>
    public static Tensor Value(Tensor values, Tensor oldValues, Tensor returns, Tensor mask, double clip)
    {
        var clippedValues = oldValues + (values - oldValues).clamp(-clip, clip);
        var perToken = 0.5 * maximum((clippedValues - returns).square(), (values - returns).square());
        return MaskedMeanPerSequence(perToken, mask).mean();
    }

    public static Tensor MaskedMeanPerSequence(Tensor perToken, Tensor mask) =>
        (perToken * mask).sum(1) / mask.sum(1).clamp_min(1);
}
