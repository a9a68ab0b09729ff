using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>
/// Next-token statistics: the one entropy / log-prob routine every caller uses (the env's step and score endpoint, the
/// segmenter's reference readings, the policy's metrics), always in fp32 (bf16 entropies flicker around
/// segmentation thresholds). Same inputs give bit-identical results on every path.
/// </summary>
public static class TokenStatistics
{
    /// <summary>log softmax(logits) in fp32 over the last dimension, and the entropy in nats from it: (..., V) →
    /// ((..., V), (...)).</summary>
    public static (Tensor LogProbs, Tensor Entropy) LogSoftmaxAndEntropy(Tensor logits)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits.dtype == ScalarType.Float32 ? logits : logits.to_type(ScalarType.Float32), -1);
        // −Σ p·log p. Without autograd, in place (one temporary of the logits' size); with it, out of place, since exp's
        // backward needs its output. Both give the same numbers.
        var plogp = logp.requires_grad ? logp.exp() * logp : logp.exp().mul_(logp);
        var entropy = -plogp.sum(-1);
        return (logp.MoveToOuterDisposeScope(), entropy.MoveToOuterDisposeScope());
    }

    /// <summary>Entropy in nats of softmax(logits) over the last dimension: (..., V) → (...).</summary>
    public static Tensor Entropy(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return LogSoftmaxAndEntropy(logits).Entropy.MoveToOuterDisposeScope();
    }

    /// <summary>Pick each token's log-prob: logProbs (..., V), tokens (...) int64 → (...).</summary>
    public static Tensor Select(Tensor logProbs, Tensor tokens) => logProbs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);

    /// <summary>log softmax(logits)[token]: logits (..., V), tokens (...) int64 → (...).</summary>
    public static Tensor LogProbOf(Tensor logits, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var logp = nn.functional.log_softmax(logits.dtype == ScalarType.Float32 ? logits : logits.to_type(ScalarType.Float32), -1);
        return Select(logp, tokens).MoveToOuterDisposeScope();
    }
}
