using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class SamplerTests
{
    private static long[] Draw(long seed, double temperature, int topK, double topP)
    {
        // A private generator: the global one is shared with test classes running on other threads.
        using var logitsGenerator = new Generator(5);
        var logits = randn(new long[] { 16, 40 }, generator: logitsGenerator);
        using var sampler = new Sampler(seed, temperature, topK, topP);
        return Enumerable.Range(0, 5).SelectMany(_ => sampler.Sample(logits).data<long>().ToArray()).ToArray();
    }

    [Fact]
    public void Same_seed_gives_the_same_samples()
    {
        Assert.Equal(Draw(42, 1.0, 0, 1.0), Draw(42, 1.0, 0, 1.0));
        Assert.Equal(Draw(42, 0.7, 5, 0.9), Draw(42, 0.7, 5, 0.9));
        Assert.NotEqual(Draw(42, 1.0, 0, 1.0), Draw(43, 1.0, 0, 1.0));
    }

    [Fact]
    public void Top_k_and_top_p_only_keep_the_most_likely_tokens()
    {
        var logits = tensor(new float[] { 5f, 4f, 3f, -2f, -3f, -4f }).unsqueeze(0).expand(200, 6).contiguous();
        using var topK = new Sampler(1, 1.0, topK: 2);
        Assert.All(topK.Sample(logits).data<long>().ToArray(), t => Assert.InRange(t, 0, 1));
        using var topP = new Sampler(1, 1.0, topP: 0.5); // token 0 alone holds ~0.66 of the mass
        Assert.All(topP.Sample(logits).data<long>().ToArray(), t => Assert.Equal(0, t));
        using var greedy = new Sampler(1, 0.0);
        Assert.All(greedy.Sample(logits).data<long>().ToArray(), t => Assert.Equal(0, t));
    }

    [Fact]
    public void Out_of_range_options_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(1, temperature: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(1, topP: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(1, topK: -2));
    }

    // Off the CPU the sampler inverts the CDF with host uniforms (TorchSharp makes no CUDA generator); the same path
    // runs here on the CPU, so its distribution and its masks are checked without a GPU.
    [Fact]
    public void Inverting_the_cdf_samples_the_softmax_distribution()
    {
        var probs = new[] { 0.5, 0.3, 0.15, 0.05 };
        var logits = tensor(probs.Select(p => (float)Math.Log(p)).ToArray()).unsqueeze(0).expand(40_000, 4).contiguous();
        using var sampler = new Sampler(7, 1.0, 0, 1.0, CPU, invertCdf: true);
        var drawn = sampler.Sample(logits).data<long>().ToArray();
        for (int token = 0; token < probs.Length; token++)
            Assert.InRange(drawn.Count(t => t == token) / (double)drawn.Length, probs[token] - 0.01, probs[token] + 0.01);
    }

    [Fact]
    public void Inverting_the_cdf_never_draws_a_masked_token_and_repeats_with_its_seed()
    {
        var logits = tensor(new float[] { -9f, 5f, 4f, 3f, -2f, -3f }).unsqueeze(0).expand(2000, 6).contiguous();
        long[] Draw(long seed, int topK)
        {
            using var sampler = new Sampler(seed, 1.0, topK, 1.0, CPU, invertCdf: true);
            return sampler.Sample(logits).data<long>().ToArray();
        }
        Assert.All(Draw(1, 2), t => Assert.InRange(t, 1, 2));
        Assert.Equal(Draw(3, 0), Draw(3, 0));
        Assert.NotEqual(Draw(3, 0), Draw(4, 0));
    }
}
