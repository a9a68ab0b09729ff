using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Rollouts;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Tests;

/// <summary>GRPO's advantages, KL term and Dr. GRPO options against hand-computed values.</summary>
public class GrpoTests
{
    private const double Eps = 1e-4;

    [Fact]
    public void Outcome_advantages_are_the_group_normalized_score_on_every_token()
    {
        // Scores 1, 2, 3, 6: mean 3, sample std sqrt(14/3) = 2.1602469; A = (R − 3) / (2.1602469 + 1e-4).
        var a = Grpo.OutcomeAdvantages([1, 2, 3, 6], [2, 1, 1, 3], scaleByStd: true, Eps);
        Assert.Equal([2, 1, 1, 3], a.Select(x => x.Length));
        Assert.All(a[0], v => Assert.Equal(-0.9257772, v, 5));
        Assert.Equal(-0.4628886, a[1][0], 5);
        Assert.Equal(0.0, a[2][0], 6);
        Assert.All(a[3], v => Assert.Equal(1.3886659, v, 5));

        // Dr. GRPO: no std division, only the mean is taken off.
        var dr = Grpo.OutcomeAdvantages([1, 2, 3, 6], [2, 1, 1, 3], scaleByStd: false, Eps);
        Assert.Equal([-2f, -1f, 0f, 3f], dr.Select(x => x[0]));
    }

    [Fact]
    public void A_group_whose_rewards_are_all_equal_has_zero_advantages_not_nan()
    {
        Assert.All(Grpo.OutcomeAdvantages([2, 2, 2, 2], [3, 3, 3, 3], scaleByStd: true, Eps).SelectMany(x => x), v => Assert.Equal(0f, v));
        var steps = new[] { new Grpo.StepRewards(3, [0, 2], [0.5, 0.5]), new Grpo.StepRewards(2, [1], [0.5]) };
        Assert.All(Grpo.ProcessAdvantages(steps, scaleByStd: true, Eps).SelectMany(x => x), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void A_group_of_one_is_refused_with_a_clear_error()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new GrpoOptions { GroupSize = 1 }.Validate());
        Assert.Contains("at least 2", e.Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => Grpo.OutcomeAdvantages([1.0], [4], true, Eps)).Message);
        Assert.Contains("at least 2", Assert.Throws<ArgumentException>(() => Grpo.ProcessAdvantages([new Grpo.StepRewards(2, [1], [1])], true, Eps)).Message);
    }

    [Fact]
    public void Process_advantages_sum_the_normalized_rewards_of_the_tokens_step_and_every_later_one()
    {
        // Response A: 5 tokens, steps ending at 1 and 3 (token 4 is the EOS), rewards 1 and 3. Response B: 3 tokens,
        // one step ending at 2, reward 0. All steps of the group: 1, 3, 0 → mean 4/3, sample std sqrt(7/3) = 1.5275252.
        // r̃ = −0.2182036, 1.0910180, −0.8728144.
        var group = new[] { new Grpo.StepRewards(5, [1, 3], [1, 3]), new Grpo.StepRewards(3, [2], [0]) };
        var a = Grpo.ProcessAdvantages(group, scaleByStd: true, Eps);
        float[] expectedA = [0.8728144f, 0.8728144f, 1.0910180f, 1.0910180f, 1.0910180f]; // the EOS takes the last step's term
        for (int t = 0; t < 5; t++) Assert.Equal(expectedA[t], a[0][t], 5);
        Assert.All(a[1], v => Assert.Equal(-0.8728144, v, 5));

        // Dr. GRPO: r − 4/3 → −1/3, 5/3, −4/3.
        var dr = Grpo.ProcessAdvantages(group, scaleByStd: false, Eps);
        Assert.Equal(4.0 / 3, dr[0][0], 5);
        Assert.Equal(5.0 / 3, dr[0][4], 5);
        Assert.Equal(-4.0 / 3, dr[1][2], 5);
    }

    [Fact]
    public void Steps_pay_each_segment_what_the_env_paid_on_its_tokens_and_fold_the_eos_into_the_last()
    {
        var e = new EpisodeSample([7], [4, 5, 6, 7, 2], [0.5f, 0.5f, 1f, 1f, -1f], new float[5], Terminated: true, Gold: null, Group: 0) { StepEnds = [1, 3] };
        var steps = Grpo.Steps(e);
        Assert.Equal([1, 3], steps.Ends);
        Assert.Equal([1.0, 1.0], steps.Rewards); // 0.5 + 0.5; 1 + 1 − 1 (the EOS's missing-EOS-style payout)
        // Without the env's segments: one step, the whole response.
        var whole = Grpo.Steps(e with { StepEnds = [] });
        Assert.Equal([4], whole.Ends);
        Assert.Equal([2.0], whole.Rewards);
    }

    [Fact]
    public void K3_is_the_unbiased_nonnegative_kl_estimator()
    {
        // π = 0.5, π_ref = 0.25: 0.5 − ln 0.5 − 1 = 0.1931472; equal probabilities give 0.
        using var logp = tensor(new[] { MathF.Log(0.5f), MathF.Log(0.3f) });
        using var refLogp = tensor(new[] { MathF.Log(0.25f), MathF.Log(0.3f) });
        using var k3 = Grpo.K3(logp, refLogp, ones(2));
        Assert.Equal(0.1931472, k3[0].item<float>(), 5);
        Assert.Equal(0.0, k3[1].item<float>(), 6);
    }

    [Fact]
    public void K3_stays_finite_with_a_finite_gradient_where_a_masked_out_token_is_very_unlikely()
    {
        // A padding column: log π_ref is a placeholder 0 and the policy gives the pad token log π = −100, so
        // exp(0 − (−100)) overflows fp32. Masked out, it must contribute exactly 0 to the loss and its gradient.
        using var logp = tensor(new[] { MathF.Log(0.5f), -100f }, requires_grad: true);
        using var refLogp = tensor(new[] { MathF.Log(0.25f), 0f });
        using var mask = tensor(new[] { 1f, 0f });
        using var k3 = Grpo.K3(logp, refLogp, mask);
        using var loss = (k3 * mask).sum();
        loss.backward();
        Assert.Equal(0.1931472, loss.item<float>(), 5);
        Assert.True(float.IsFinite(logp.grad!.data<float>()[0]) && logp.grad!.data<float>()[1] == 0f);
    }

    [Fact]
    public void Dr_grpo_divides_the_token_sum_by_a_constant_instead_of_each_responses_length()
    {
        using var perToken = tensor(new float[] { 1, 1, 0, 2, 0, 0 }, new long[] { 2, 3 });
        using var mask = tensor(new float[] { 1, 1, 0, 1, 0, 0 }, new long[] { 2, 3 });
        // GRPO: mean((1 + 1)/2, 2/1) = 1.5. Dr. GRPO with max_new_tokens 4: (1 + 1 + 2) / (2 × 4) = 0.5.
        Assert.Equal(1.5, Grpo.Aggregate(perToken, mask, GrpoLossAggregation.PerSequence, 4).item<float>(), 6);
        Assert.Equal(0.5, Grpo.Aggregate(perToken, mask, GrpoLossAggregation.Constant, 4).item<float>(), 6);
        var o = new GrpoOptions().AsDrGrpo();
        Assert.False(o.ScaleByStd);
        Assert.Equal(GrpoLossAggregation.Constant, o.LossAggregation);
    }
}
