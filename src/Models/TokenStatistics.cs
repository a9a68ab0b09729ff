using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>Next-token statistics, always in fp32 (bf16 entropies flicker around segmentation thresholds).</summary>
public static class TokenStatistics
{
    /// <summary>Entropy in nats of softmax(logits) over the last dimension: (..., V) → (...).</summary>
    public static Tensor Entropy(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits.to_type(ScalarType.Float32), -1);
        return (-(logp.exp() * logp).sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>log softmax(logits)[token]: logits (..., V), tokens (...) int64 → (...).</summary>
    public static Tensor LogProbOf(Tensor logits, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits.to_type(ScalarType.Float32), -1);
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Entropy and log-prob from one log-softmax (the env's per-step pair).</summary>
    public static (Tensor Entropy, Tensor LogProb) EntropyAndLogProbOf(Tensor logits, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits.to_type(ScalarType.Float32), -1);
        var entropy = -(logp.exp() * logp).sum(-1);
        var chosen = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
        return (entropy.MoveToOuterDisposeScope(), chosen.MoveToOuterDisposeScope());
    }
}
