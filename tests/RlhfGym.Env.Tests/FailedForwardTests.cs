using System.Runtime.InteropServices;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;

namespace RlhfGym.Env.Tests;

/// <summary>
/// A forward that fails halfway (a prefill or a decode step that throws after one model has written its caches, as
/// running out of memory would) must not leave an env that steps on with half-written caches and pays wrong rewards: the
/// sub-envs it touched refuse to step, naming themselves and the failure, until a reset prefills them again, and after a
/// reset the env pays exactly what a fresh env pays.
/// </summary>
public class FailedForwardTests
{
    private static readonly EnvBundle Bundle = EnvBundle.Load(TestBundles.SegmentBundle);
    private static int Eos => Bundle.Tokenizer.EosId;
    private const float Tolerance = 1e-4f; // a pool-mate steps through a shared decoder: fp32 rounding, no more

    private static TextVectorEnv Make(int n, EnvDecoders? shared = null) =>
        new(Bundle, n, Bundle.Defaults, AutoresetMode.NextStep, shared: shared);

    private static int[] Tokens(Random rng, int n) => Enumerable.Range(0, n).Select(_ => 3 + rng.Next(Bundle.VocabSize - 3)).ToArray();

    // Fails the next forward part named `where` ("prefill" or "step") once, as a native allocation failure would.
    private static void FailOnce(TextVectorEnv env, string where)
    {
        var decoder = env.Decoder;
        decoder.FaultForTests = part =>
        {
            if (part != where) return;
            decoder.FaultForTests = null;
            throw new ExternalException($"injected: the {part} ran out of memory");
        };
    }

    // Both envs reset with one seed and take the same actions: the same rewards and readings, bit for bit.
    private static void AssertStepsLikeAFreshEnv(TextVectorEnv env, int seed)
    {
        using var fresh = Make(env.Spec.NumEnvs);
        Assert.Equal(fresh.Reset(seed).PromptIds, env.Reset(seed).PromptIds);
        var rng = new Random(seed);
        for (int s = 0; s < 12; s++)
        {
            var actions = Tokens(rng, env.Spec.NumEnvs);
            var a = env.Step(actions);
            var b = fresh.Step(actions);
            Assert.Equal(b.Rewards, a.Rewards);
            Assert.Equal(b.RefLogProb, a.RefLogProb);
            Assert.Equal(b.RefEntropy, a.RefEntropy);
        }
    }

    // Three sub-envs after a step in which sub-env 1 ended: the next step starts its new episode, and that prefill fails.
    private static (TextVectorEnv Env, Random Rng) WithAnAutoresetPendingThatWillFail()
    {
        var env = Make(3);
        env.Reset(1);
        var rng = new Random(1);
        var actions = Tokens(rng, 3);
        actions[1] = Eos;
        env.Step(actions);
        FailOnce(env, "prefill");
        return (env, rng);
    }

    [Fact]
    public void A_failed_autoreset_prefill_leaves_that_sub_env_refusing_to_step_until_it_is_reset()
    {
        var (env, rng) = WithAnAutoresetPendingThatWillFail();
        using var _ = env;
        var failed = Assert.Throws<ExternalException>(() => env.Step(Tokens(rng, 3)));
        Assert.Contains("injected", failed.Message);

        var refused = Assert.Throws<InvalidOperationException>(() => env.Step(Tokens(rng, 3)));
        Assert.Contains("sub-env 1", refused.Message);
        Assert.Contains("injected", refused.Message);
        Assert.Contains("Reset", refused.Message);
        Assert.Throws<InvalidOperationException>(() => env.Step(Tokens(rng, 3))); // refusing changed nothing

        env.Reset(options: new ResetOptions { Mask = [false, true, false] }); // a masked reset of it is enough
        env.Step(Tokens(rng, 3));
        AssertStepsLikeAFreshEnv(env, 2);
    }

    [Fact]
    public void An_episode_that_ends_in_a_step_whose_autoreset_prefill_fails_still_autoresets_on_the_next_step()
    {
        var (env, rng) = WithAnAutoresetPendingThatWillFail();
        using var _ = env;
        var actions = Tokens(rng, 3);
        actions[2] = Eos; // sub-env 2 ends in the step whose prefill (of sub-env 1's new episode) fails
        Assert.Throws<ExternalException>(() => env.Step(actions));

        env.Reset(options: new ResetOptions { Mask = [false, true, false] });
        var next = env.Step(Tokens(rng, 3)); // sub-env 2's token is ignored: it waits for its autoreset, not a Reset
        Assert.NotNull(next.ResetPrompts[2]);
        Assert.Null(next.ResetPrompts[0]);
        env.Step(Tokens(rng, 3));
    }

    [Fact]
    public void A_failed_reset_leaves_every_sub_env_it_reset_refusing_to_step()
    {
        using var env = Make(2);
        env.Reset(3);
        FailOnce(env, "prefill");
        Assert.Throws<ExternalException>(() => env.Reset(4));
        var refused = Assert.Throws<InvalidOperationException>(() => env.Step(Tokens(new Random(4), 2)));
        Assert.Contains("sub-env 0", refused.Message);
        AssertStepsLikeAFreshEnv(env, 4);
    }

    [Fact]
    public void A_decode_step_that_fails_halfway_leaves_every_sub_env_refusing_to_step()
    {
        using var env = Make(2);
        env.Reset(5);
        var rng = new Random(5);
        env.Step(Tokens(rng, 2));
        FailOnce(env, "step");
        Assert.Throws<ExternalException>(() => env.Step(Tokens(rng, 2)));
        var refused = Assert.Throws<InvalidOperationException>(() => env.Step(Tokens(rng, 2)));
        Assert.Contains("sub-env 0", refused.Message);
        AssertStepsLikeAFreshEnv(env, 6);
    }

    [Fact]
    public void A_batched_step_that_fails_leaves_its_envs_refusing_and_a_pool_mate_that_did_not_step_untouched()
    {
        using var decoders = new EnvDecoders();
        using var first = Make(2, decoders);
        using var second = Make(3, decoders);
        using var idle = Make(2, decoders);
        using var idleAlone = Make(2);
        first.Reset(7);
        second.Reset(8);
        idle.Reset(9);
        idleAlone.Reset(9);
        var rng = new Random(7);
        FailOnce(first, "step");
        Assert.Throws<ExternalException>(() => TextVectorEnv.StepTogether([(first, Tokens(rng, 2)), (second, Tokens(rng, 3))]));
        foreach (var env in new[] { first, second })
            Assert.Contains("sub-env 0", Assert.Throws<InvalidOperationException>(() => env.Step(Tokens(rng, env.Spec.NumEnvs))).Message);

        // The env that did not step shares the pool, but the failed forward computed none of its rows.
        for (int s = 0; s < 8; s++)
        {
            var actions = Tokens(rng, 2);
            var a = idle.Step(actions);
            var b = idleAlone.Step(actions);
            for (int i = 0; i < 2; i++)
            {
                Assert.Equal(b.Rewards[i], a.Rewards[i], Tolerance);
                Assert.Equal(b.RefLogProb[i], a.RefLogProb[i], Tolerance);
            }
        }
        // A reset of the failed envs, stepped together again, works.
        first.Reset(10);
        second.Reset(11);
        var outcomes = TextVectorEnv.StepTogether([(first, Tokens(rng, 2)), (second, Tokens(rng, 3))]);
        Assert.All(outcomes, o => Assert.Null(o.Error));
    }
}
