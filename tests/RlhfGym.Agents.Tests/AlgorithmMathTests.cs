using RlhfGym.Agents.Algorithms;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Tests;

public class AlgorithmMathTests
{
    [Fact]
    public void Gae_matches_a_hand_computed_episode()
    {
        // r = [0, 0, 1], V = [0.5, 0.2, 0.4], γ = 1, λ = 0.5; V after the last action is 0.
        // δ2 = 1 − 0.4 = 0.6; δ1 = 0 + 0.4 − 0.2 = 0.2; δ0 = 0 + 0.2 − 0.5 = −0.3
        // A2 = 0.6; A1 = 0.2 + 0.5·0.6 = 0.5; A0 = −0.3 + 0.5·0.5 = −0.05
        var (a, g) = Advantages.Gae([0f, 0f, 1f], [0.5f, 0.2f, 0.4f], gamma: 1, lambda: 0.5);
        Assert.Equal(0.6, a[2], 6);
        Assert.Equal(0.5, a[1], 6);
        Assert.Equal(-0.05, a[0], 6);
        Assert.Equal(0.45, g[0], 6);
        Assert.Equal(0.7, g[1], 6);
        Assert.Equal(1.0, g[2], 6);
        // λ = 1, γ = 1: advantages are reward-to-go minus the value.
        var (a1, _) = Advantages.Gae([1f, 2f, 3f], [0f, 1f, 2f], 1, 1);
        Assert.Equal([6f, 4f, 1f], a1);
    }

    [Fact]
    public void Kl_shaping_matches_hand_computed_rewards()
    {
        // Episode 0: r = [0, 1], log π_old = [−0.5, −2.5], log π_ref = [−1, −2] → KL per token [0.5, −0.5], Σ = 0.
        // Episode 1: r = [2], log π_old = [−0.75], log π_ref = [−1] → KL 0.25.
        // β = 0.1: R = [0 − 0.05, 1 + 0.05] and [2 − 0.025]; KL figure = mean per-episode Σ = (0 + 0.25) / 2.
        var episodes = new List<Rollouts.EpisodeSample>
        {
            new([5], [6, 7], [0f, 1f], [-1f, -2f], true, null, 0),
            new([5], [8], [2f], [-1f], false, null, 1),
        };
        float[][] old = [[-0.5f, -2.5f], [-0.75f]];
        var shaped = KlShaping.Shape(episodes, old, klCoef: 0.1);
        Assert.Equal(-0.05, shaped.Rewards[0][0], 12);
        Assert.Equal(1.05, shaped.Rewards[0][1], 12);
        Assert.Equal(1.975, shaped.Rewards[1][0], 12);
        Assert.Equal(0.125, shaped.Kl, 12);
        // The summation order of the KL figure is the only thing sumKlBackward changes.
        var backward = KlShaping.Shape(episodes, old, klCoef: 0.1, sumKlBackward: true);
        Assert.Equal(shaped.Rewards, backward.Rewards);
        Assert.Equal(shaped.Kl, backward.Kl);
        Assert.Throws<ArgumentException>(() => KlShaping.Shape(episodes, [[-0.5f], [-0.75f]], 0.1));
    }

    [Fact]
    public void Whitening_is_over_the_whole_rollout()
    {
        var episodes = new List<float[]> { new[] { 1f, 2f }, new[] { 3f, 4f, 5f } };
        Advantages.Whiten(episodes);
        var all = episodes.SelectMany(e => e).ToArray();
        Assert.Equal(0, all.Average(), 5);
        Assert.Equal(1, Math.Sqrt(all.Select(v => v * v).Average()), 4);
        Assert.True(episodes[0][0] < episodes[1][0]);
    }

    [Fact]
    public void Rloo_baseline_is_the_mean_of_the_others()
    {
        var b = Advantages.LeaveOneOutBaselines([0.0, 3.0, 6.0]);
        Assert.Equal(4.5, b[0], 12);
        Assert.Equal(3.0, b[1], 12);
        Assert.Equal(1.5, b[2], 12);
        Assert.Throws<ArgumentException>(() => Advantages.LeaveOneOutBaselines([1.0]));
    }

    [Fact]
    public void Clipped_policy_loss_on_a_small_fixture()
    {
        // Two sequences; the second has one padded position.
        var old = zeros(2, 2);
        var logp = tensor(new float[] { (float)Math.Log(1.5), (float)Math.Log(0.5), (float)Math.Log(1.1), 0f }).reshape(2, 2);
        var adv = tensor(new float[] { 1f, -1f, 2f, 5f }).reshape(2, 2);
        var mask = tensor(new float[] { 1f, 1f, 1f, 0f }).reshape(2, 2);
        var (loss, clipFraction, _) = PpoLosses.Policy(logp, old, adv, mask, clip: 0.2);
        // seq 1: token 1: ρ 1.5, A 1 → min(1.5, 1.2) = 1.2; token 2: ρ 0.5, A −1 → min(−0.5, −0.8) = −0.8 → mean −(1.2 − 0.8)/2 = −0.2
        // seq 2: ρ 1.1, A 2 → 2.2 → −2.2; batch mean (−0.2 − 2.2)/2 = −1.2
        Assert.Equal(-1.2, loss.item<float>(), 5);
        Assert.Equal(2.0 / 3, clipFraction, 5);
    }

    [Fact]
    public void Value_loss_takes_the_worse_of_clipped_and_unclipped()
    {
        var oldV = tensor(new float[] { 0f, 0f }).reshape(1, 2);
        var v = tensor(new float[] { 1f, -0.1f }).reshape(1, 2);
        var g = tensor(new float[] { 0f, 1f }).reshape(1, 2);
        var mask = ones(1, 2);
        // token 1: V 1 → clipped 0.25; (0.25−0)² = 0.0625, (1−0)² = 1 → 1; token 2: V −0.1 (inside clip): (−0.1−1)² = 1.21
        // 0.5 · mean(1, 1.21) = 0.5525
        Assert.Equal(0.5525, PpoLosses.Value(v, oldV, g, mask, 0.25).item<float>(), 5);
    }
}
