using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;

namespace RlhfGym.Env.Tests;

public class EnvCheckerTests
{
    private static readonly EnvBundle Bundle = EnvBundle.Load(TestBundles.SegmentBundle);

    [Theory]
    [InlineData(AutoresetMode.NextStep)]
    [InlineData(AutoresetMode.Disabled)]
    public void A_correct_env_passes_every_check(AutoresetMode autoreset)
    {
        using var env = new TextVectorEnv(Bundle, 3, autoreset: autoreset);
        var report = EnvChecker.Check(env, seed: 4, steps: 40);
        Assert.True(report.Passed, string.Join("\n", report.Failures.Select(f => $"{f.Name}: {f.Detail}")));
        Assert.Contains(report.Checks, c => c.Name == "step vs score");
    }

    /// <summary>Forwards to a real env, then breaks one thing.</summary>
    private class Broken(IVectorEnv inner) : IVectorEnv, IScoringEnv
    {
        protected readonly IVectorEnv Inner = inner;
        public virtual EnvSpec Spec => Inner.Spec;
        public virtual ResetResult Reset(long? seed = null, ResetOptions? options = null) => Inner.Reset(seed, options);
        public virtual StepResult Step(ReadOnlySpan<int> actions) => Inner.Step(actions);
        public virtual IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> p, IReadOnlyList<int[]> r) => ((IScoringEnv)Inner).Score(p, r);
        public void Dispose() => Inner.Dispose();
    }

    private sealed class NanReward(IVectorEnv inner) : Broken(inner)
    {
        public override StepResult Step(ReadOnlySpan<int> actions)
        {
            var r = Inner.Step(actions);
            if (r.Episodes[0] is not null) r.Rewards[0] = float.NaN;
            return r;
        }
    }

    private sealed class BothFlags(IVectorEnv inner) : Broken(inner)
    {
        public override StepResult Step(ReadOnlySpan<int> actions)
        {
            var r = Inner.Step(actions);
            if (r.Terminated[0]) r.Truncated[0] = true;
            return r;
        }
    }

    private sealed class IgnoresSeed(IVectorEnv inner) : Broken(inner)
    {
        private long _calls;
        public override ResetResult Reset(long? seed = null, ResetOptions? options = null) => Inner.Reset(++_calls * 7919, options);
    }

    private sealed class AcceptsAnything(IVectorEnv inner) : Broken(inner)
    {
        public override StepResult Step(ReadOnlySpan<int> actions)
        {
            var clamped = new int[actions.Length];
            for (int b = 0; b < clamped.Length; b++) clamped[b] = Math.Clamp(actions[b], 3, Inner.Spec.VocabSize - 1);
            return Inner.Step(clamped.AsSpan(0, Math.Min(clamped.Length, Inner.Spec.NumEnvs)));
        }
    }

    private sealed class ScoresDifferently(IVectorEnv inner) : Broken(inner)
    {
        public override IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> p, IReadOnlyList<int[]> r) =>
            base.Score(p, r).Select(e => e with { PerToken = e.PerToken.Select(v => v + 0.01f).ToArray() }).ToList();
    }

    /// <summary>Every reward of every other rollout moved by a constant: fp32 rounding (tiny) or a real difference.</summary>
    private sealed class ShiftsEveryOtherRollout(IVectorEnv inner, float shift) : Broken(inner)
    {
        private int _resets;
        public override ResetResult Reset(long? seed = null, ResetOptions? options = null)
        {
            _resets++;
            return Inner.Reset(seed, options);
        }

        public override StepResult Step(ReadOnlySpan<int> actions)
        {
            var r = Inner.Step(actions);
            if (_resets % 2 == 0) r.Rewards[0] += shift;
            return r;
        }
    }

    [Fact]
    public void Step_determinism_allows_fp32_rounding_and_says_so_but_not_more()
    {
        // A served session batched with others' may differ in the last bits; the checker passes that and says it.
        using (var rounding = new ShiftsEveryOtherRollout(new TextVectorEnv(Bundle, 2), 1e-6f))
        {
            var check = EnvChecker.Check(rounding, seed: 2, steps: 40).Checks.Single(c => c.Name == "step determinism");
            Assert.True(check.Passed, check.Detail);
            Assert.Contains("fp32 rounding", check.Detail);
        }
        using (var different = new ShiftsEveryOtherRollout(new TextVectorEnv(Bundle, 2), 1e-2f))
        {
            var check = EnvChecker.Check(different, seed: 2, steps: 40).Checks.Single(c => c.Name == "step determinism");
            Assert.False(check.Passed);
            Assert.Contains("different rewards", check.Detail);
        }
        using var alone = new TextVectorEnv(Bundle, 2);
        Assert.Contains("reproduced exactly", EnvChecker.Check(alone, seed: 2, steps: 40).Checks.Single(c => c.Name == "step determinism").Detail);
    }

    public static TheoryData<string, string> Cases => new()
    {
        { nameof(NanReward), "rewards and infos finite" },
        { nameof(BothFlags), "terminated xor truncated" },
        { nameof(IgnoresSeed), "reset seeding" },
        { nameof(AcceptsAnything), "bad actions rejected without a state change" },
        { nameof(ScoresDifferently), "step vs score" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Broken_envs_fail_the_specific_check(string kind, string failingCheck)
    {
        var inner = new TextVectorEnv(Bundle, 2);
        using IVectorEnv env = kind switch
        {
            nameof(NanReward) => new NanReward(inner),
            nameof(BothFlags) => new BothFlags(inner),
            nameof(IgnoresSeed) => new IgnoresSeed(inner),
            nameof(AcceptsAnything) => new AcceptsAnything(inner),
            _ => new ScoresDifferently(inner),
        };
        var report = EnvChecker.Check(env, seed: 2, steps: 40);
        Assert.False(report.Passed);
        Assert.Contains(report.Failures, f => f.Name == failingCheck);
    }

    [Fact]
    public void The_single_env_view_steps_one_episode()
    {
        using var single = new SingleEnv(new TextVectorEnv(Bundle, 1));
        var (prompt, id, _) = single.Reset(3);
        Assert.NotEmpty(prompt);
        Assert.NotEmpty(id);
        var step = single.Step(5);
        Assert.False(step.Terminated);
        var end = single.Step(Bundle.Tokenizer.EosId);
        Assert.True(end.Terminated);
        Assert.NotNull(end.Episode);
        Assert.NotNull(single.Step(5).ResetPrompt);
        Assert.Throws<ArgumentException>(() => new SingleEnv(new TextVectorEnv(Bundle, 2)));
    }
}
