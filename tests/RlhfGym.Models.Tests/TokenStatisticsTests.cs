using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class TokenStatisticsTests
{
    [Fact]
    public void Entropy_and_log_prob_match_a_direct_softmax()
    {
        random.manual_seed(11);
        var logits = randn(4, 6, 30) * 3;
        var tokens = randint(0, 30, [4, 6], ScalarType.Int64);
        var probs = logits.to_type(ScalarType.Float64).softmax(-1);
        var expectedEntropy = -(probs * probs.log()).sum(-1);
        var expectedLogProb = probs.log().gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
        Assert.True((TokenStatistics.Entropy(logits).to_type(ScalarType.Float64) - expectedEntropy).abs().max().item<double>() < 1e-5);
        Assert.True((TokenStatistics.LogProbOf(logits, tokens).to_type(ScalarType.Float64) - expectedLogProb).abs().max().item<double>() < 1e-5);
        var (logp, h) = TokenStatistics.LogSoftmaxAndEntropy(logits);
        Assert.True((h.to_type(ScalarType.Float64) - expectedEntropy).abs().max().item<double>() < 1e-5);
        Assert.True((TokenStatistics.Select(logp, tokens).to_type(ScalarType.Float64) - expectedLogProb).abs().max().item<double>() < 1e-5);
        // One routine: the entropy alone is bit-identical to the pair's, with or without autograd.
        Assert.True(TokenStatistics.Entropy(logits).eq(h).all().item<bool>());
        var tracked = logits.clone().requires_grad_(true);
        var (_, hTracked) = TokenStatistics.LogSoftmaxAndEntropy(tracked);
        Assert.True(hTracked.detach().eq(h).all().item<bool>());
        hTracked.sum().backward();
        Assert.NotNull(tracked.grad);
    }

    [Fact]
    public void Entropy_is_computed_in_fp32_even_for_bf16_logits()
    {
        var logits = randn(3, 40).to_type(ScalarType.BFloat16);
        var h = TokenStatistics.Entropy(logits);
        Assert.Equal(ScalarType.Float32, h.dtype);
        var uniform = zeros(1, 40);
        Assert.Equal(Math.Log(40), TokenStatistics.Entropy(uniform).item<float>(), 5);
    }
}
