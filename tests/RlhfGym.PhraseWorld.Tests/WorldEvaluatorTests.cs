using RlhfGym.Env.Judging;
using RlhfGym.PhraseWorld;

namespace RlhfGym.PhraseWorld.Tests;

public class WorldEvaluatorTests
{
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
        Assert.Equal(0.5, e.LcWinRateVsReference!.Value, 3);
        Assert.False(e.LengthControlled.GlmFailed);
        Assert.Equal(1.0, e.EosRate);
        Assert.Equal(e.MeanGold, e.ReferenceMeanGold);
    }
}
