using RlhfGym.Env.Judging;

namespace RlhfGym.Env.Tests;

public class LengthControlledWinRateTests
{
    [Fact]
    public void When_length_does_not_decide_the_outcome_LC_stays_at_the_raw_win_rate()
    {
        var rng = new Random(1);
        var wins = Enumerable.Range(0, 4000).Select(_ => rng.NextDouble() < 0.7 ? 1.0 : 0.0).ToList();
        var diff = Enumerable.Range(0, 4000).Select(_ => (double)rng.Next(-10, 11)).ToList();
        var lc = LengthControlledWinRate.Fit(wins, diff);
        Assert.False(lc.GlmFailed);
        Assert.InRange(lc.Value!.Value, 0.67, 0.73);
        Assert.InRange(lc.LengthCoef, -0.15, 0.15);
    }

    [Fact]
    public void A_length_effect_is_removed_toward_the_equal_length_rate()
    {
        // The policy is a little better (θ = 0.3 at equal length) and usually longer; longer also wins more often.
        var rng = new Random(2);
        var diff = Enumerable.Range(0, 4000).Select(_ => rng.NextDouble() * 10 - 3).ToList();
        double sd = Math.Sqrt(diff.Sum(d => (d - diff.Average()) * (d - diff.Average())) / (diff.Count - 1));
        var wins = diff.Select(d => rng.NextDouble() < 1 / (1 + Math.Exp(-(0.3 + 0.8 * Math.Tanh(d / sd)))) ? 1.0 : 0.0).ToList();
        var lc = LengthControlledWinRate.Fit(wins, diff);
        Assert.True(wins.Average() > 0.62, $"raw {wins.Average()}"); // σ(0.3) = 0.574 at equal length
        Assert.False(lc.GlmFailed);
        Assert.InRange(lc.Value!.Value, 1 / (1 + Math.Exp(-0.3)) - 0.03, 1 / (1 + Math.Exp(-0.3)) + 0.03);
        Assert.InRange(lc.LengthCoef, 0.65, 0.95);
    }

    [Fact]
    public void A_policy_that_loses_by_running_long_is_reported_as_a_failed_GLM_not_as_a_high_LC()
    {
        // The shape of token mode's length collapse: the policy is always far longer and loses 94% of comparisons.
        // The old free-intercept fit read this at Δ = 0 as LC ≈ 0.9.
        var rng = new Random(3);
        var diff = Enumerable.Range(0, 2000).Select(_ => 40 + rng.NextDouble() * 10).ToList();
        var wins = diff.Select(d => rng.NextDouble() < 0.06 ? 1.0 : 0.0).ToList();
        var lc = LengthControlledWinRate.Fit(wins, diff);
        double wr = wins.Average();
        Assert.True(lc.Value is null || lc.Value <= Math.Max(wr + (1 - wr) / 4, wr + 0.1), $"LC {lc.Value} at WR {wr}");
        Assert.True(double.IsFinite(lc.ModelCoef) && double.IsFinite(lc.LengthCoef));
    }

    [Theory]
    [InlineData(0.061, 0.295, false)] // the bound at WR 0.061 is max(0.061 + 0.939/4, 0.161) = 0.29575
    [InlineData(0.061, 0.296, true)]
    [InlineData(0.061, 0.89, true)]
    [InlineData(0.5, 0.62, false)] // max(0.625, 0.6)
    [InlineData(0.5, 0.63, true)]
    [InlineData(0.5, 0.38, false)] // min(0.375, 0.4)
    [InlineData(0.5, 0.37, true)]
    [InlineData(0.9, 0.95, false)] // max(0.925, 1.0): above is impossible
    [InlineData(0.9, 0.68, false)] // min(0.675, 0.8)
    [InlineData(0.9, 0.67, true)]
    public void The_failure_bound_is_AlpacaEvals(double winRate, double lc, bool extreme) =>
        Assert.Equal(extreme, LengthControlledWinRate.IsExtremeChange(winRate, lc));

    [Fact]
    public void Separable_and_degenerate_data_give_finite_fits()
    {
        var allWins = LengthControlledWinRate.Fit([1, 1, 1, 1], [3, 5, 2, 8]);
        Assert.True(double.IsFinite(allWins.ModelCoef) && double.IsFinite(allWins.LengthCoef));
        var equalLengths = LengthControlledWinRate.Fit([1, 0, 0.5, 1], [0, 0, 0, 0]);
        Assert.Equal(0, equalLengths.LengthCoef);
        Assert.InRange(equalLengths.Value!.Value, 0.6, 0.65); // σ(θ) at the raw rate 0.625, shrunk a little by the penalty
        var one = LengthControlledWinRate.Fit([1], [4]);
        Assert.True(double.IsFinite(one.ModelCoef));
    }

    [Fact]
    public void Bad_inputs_name_what_is_wrong()
    {
        Assert.Contains("one outcome per length difference", Assert.Throws<ArgumentException>(() => LengthControlledWinRate.Fit([1, 0], [1])).Message);
        Assert.Throws<ArgumentException>(() => LengthControlledWinRate.Fit([], []));
        Assert.Contains("[0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => LengthControlledWinRate.Fit([1, 2], [1, 1])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => LengthControlledWinRate.Fit([double.NaN], [1]));
    }
}
