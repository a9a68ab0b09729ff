using RlhfGym.Env.Judging;
using RlhfGym.PhraseWorld;

namespace RlhfGym.PhraseWorld.Tests;

public class WorldEvaluatorTests
{
    [Fact]
    public void Lc_win_rate_matches_the_raw_rate_when_length_does_not_matter()
    {
        var rng = new Random(1);
        var wins = Enumerable.Range(0, 4000).Select(_ => rng.NextDouble() < 0.7 ? 1.0 : 0.0).ToList();
        var diff = Enumerable.Range(0, 4000).Select(_ => (double)rng.Next(-10, 11)).ToList();
        Assert.InRange(JudgedComparison.LengthControlledWinRate(wins, diff), 0.67, 0.73);
    }

    [Fact]
    public void Lc_win_rate_removes_a_pure_length_effect()
    {
        // Longer always wins, and the policy is longer most of the time: raw rate high, LC near one half.
        var rng = new Random(2);
        var diff = Enumerable.Range(0, 4000).Select(_ => rng.NextDouble() * 10 - 3).ToList();
        var wins = diff.Select(d => rng.NextDouble() < 1 / (1 + Math.Exp(-d)) ? 1.0 : 0.0).ToList();
        Assert.True(wins.Average() > 0.65);
        Assert.InRange(JudgedComparison.LengthControlledWinRate(wins, diff), 0.4, 0.6);
    }

    [Fact]
    public void Evaluating_responses_against_themselves_is_a_tie()
    {
        var w = TestWorlds.Seed1;
        var behaviour = new BehaviourPolicy(w);
        var rng = new RlhfGym.Env.Common.SeededRandom(4);
        var prompts = w.Split("test").ToList();
        var responses = prompts.Select(p => behaviour.Sample(p, rng)).ToList();
        var e = WorldEvaluator.Evaluate(w, prompts, responses, responses);
        Assert.Equal(0.5, e.WinRateVsReference);
        Assert.Equal(0.5, e.LcWinRateVsReference, 3);
        Assert.Equal(1.0, e.EosRate);
        Assert.Equal(e.MeanGold, e.ReferenceMeanGold);
    }
}
