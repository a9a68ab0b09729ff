using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Tests;

public class TextVectorEnvTests
{
    private static readonly EnvBundle Bundle = EnvBundle.Load(TestBundles.SegmentBundle);
    private static int Eos => Bundle.Tokenizer.EosId;

    private static TextVectorEnv Make(EnvOptions? options = null, int n = 4, AutoresetMode autoreset = AutoresetMode.NextStep) =>
        new(Bundle, n, options ?? Bundle.Defaults, autoreset);

    /// <summary>Random actions (EOS with probability 1/8, never otherwise); collects every finished episode, the
    /// prompt it answered and the rewards each step paid.</summary>
    private static List<(int[] Prompt, EpisodeRewards Episode, List<float> Paid)> Run(TextVectorEnv env, int steps, int seed)
    {
        var rng = new Random(seed);
        var reset = env.Reset(seed);
        var prompts = reset.Prompts.ToArray();
        var paid = Enumerable.Range(0, env.Spec.NumEnvs).Select(_ => new List<float>()).ToArray();
        var done = new List<(int[], EpisodeRewards, List<float>)>();
        var actions = new int[env.Spec.NumEnvs];
        for (int s = 0; s < steps; s++)
        {
            for (int b = 0; b < actions.Length; b++)
                actions[b] = rng.Next(8) == 0 ? Eos : 3 + rng.Next(env.Spec.VocabSize - 3);
            var r = env.Step(actions);
            for (int b = 0; b < actions.Length; b++)
            {
                if (r.ResetPrompts[b] is { } fresh)
                {
                    Assert.Equal(0f, r.Rewards[b]);
                    Assert.False(r.Terminated[b] || r.Truncated[b]);
                    prompts[b] = fresh;
                    paid[b] = [];
                    continue;
                }
                Assert.False(r.Terminated[b] && r.Truncated[b], "terminated and truncated together");
                Assert.True(float.IsFinite(r.Rewards[b]));
                paid[b].Add(r.Rewards[b]);
                if (r.Episodes[b] is { } e) done.Add((prompts[b], e, paid[b]));
            }
        }
        return done;
    }

    [Fact]
    public void Stepping_both_models_in_parallel_lanes_pays_what_stepping_them_one_after_the_other_pays()
    {
        using var lanes = new TextVectorEnv(Bundle, 4, Bundle.Defaults, AutoresetMode.NextStep, parallelModels: true);
        using var serial = new TextVectorEnv(Bundle, 4, Bundle.Defaults, AutoresetMode.NextStep, parallelModels: false);
        var rng = new Random(5);
        lanes.Reset(5);
        serial.Reset(5);
        var actions = new int[4];
        int segments = 0;
        for (int s = 0; s < 60; s++)
        {
            for (int b = 0; b < 4; b++) actions[b] = rng.Next(10) == 0 ? Eos : 3 + rng.Next(Bundle.VocabSize - 3);
            var x = lanes.Step(actions);
            var (logp, entropy, rewards, raw, ended) = (x.RefLogProb.ToArray(), x.RefEntropy.ToArray(), x.Rewards.ToArray(), x.RawRead.ToArray(), x.SegmentEnded.ToArray());
            var y = serial.Step(actions);
            for (int b = 0; b < 4; b++)
            {
                Assert.Equal(logp[b], y.RefLogProb[b], 1e-5f);
                Assert.Equal(entropy[b], y.RefEntropy[b], 1e-5f);
                Assert.Equal(rewards[b], y.Rewards[b], 1e-5f);
                Assert.Equal(ended[b], y.SegmentEnded[b]);
                if (!float.IsNaN(raw[b])) Assert.Equal(raw[b], y.RawRead[b], 1e-5f);
                segments += ended[b] ? 1 : 0;
            }
        }
        Assert.True(segments > 0, "no segment ended: the comparison covered no reward-model read");
    }

    public static IEnumerable<object[]> AllCombinations()
    {
        foreach (var mode in new[] { "segment", "token", "bandit" })
            foreach (var norm in Enum.GetValues<NormalizerKind>())
                foreach (var interp in Enum.GetValues<Interpolation>())
                    foreach (var delivery in Enum.GetValues<RewardDelivery>())
                        yield return [mode, norm, interp, delivery];
    }

    [Theory]
    [MemberData(nameof(AllCombinations))]
    public void Stepping_and_scoring_give_the_same_rewards(string mode, NormalizerKind norm, Interpolation interp, RewardDelivery delivery)
    {
        var options = Bundle.Defaults with { Reading = RewardReading.Parse(mode, 1.0), Normalizer = norm, Interpolation = interp, Delivery = delivery };
        using var env = Make(options);
        var episodes = Run(env, 30, seed: 3);
        Assert.True(episodes.Count >= 4, $"only {episodes.Count} episodes finished");
        var scored = env.Score(episodes.Select(e => e.Prompt).ToList(), episodes.Select(e => e.Episode.Response).ToList());
        for (int i = 0; i < episodes.Count; i++)
        {
            var (_, stepped, paid) = episodes[i];
            var expected = delivery == RewardDelivery.Episode ? scored[i].PerToken : scored[i].Online;
            var stepRewards = delivery == RewardDelivery.Episode ? stepped.PerToken : paid.ToArray();
            Assert.Equal(expected.Length, stepRewards.Length);
            for (int j = 0; j < expected.Length; j++)
                Assert.True(Math.Abs(expected[j] - stepRewards[j]) <= 1e-5, $"episode {i} token {j}: step {stepRewards[j]} vs score {expected[j]}");
            if (delivery == RewardDelivery.Episode)
            {
                Assert.All(paid.Take(paid.Count - 1), r => Assert.Equal(0f, r));          // earlier steps pay 0
                Assert.Equal(stepped.Total, paid[^1], 4);                                 // the final step pays the total
            }
            Assert.Equal(scored[i].Segments, stepped.Segments);
            for (int j = 0; j < stepped.Response.Length; j++)
                Assert.True(Math.Abs(scored[i].RefLogProbs[j] - stepped.RefLogProbs[j]) <= 1e-4);
        }
    }

    [Theory]
    [InlineData("token")]
    [InlineData("segment")]
    public void Length_norm_divides_each_tokens_reward_by_the_response_length_and_scoring_agrees(string mode)
    {
        // A penalty for responses cut by the budget, so both kinds of ending are covered: the penalty stays whole.
        var plain = Bundle.Defaults with { Reading = RewardReading.Parse(mode, 1.0), MissingEos = MissingEosRule.Penalty, MissingEosPenalty = 0.5 };
        using var sum = Make(plain);
        using var mean = Make(plain with { LengthNorm = true });
        var a = Run(sum, 40, seed: 5);
        var b = Run(mean, 40, seed: 5);
        Assert.Equal(a.Count, b.Count);
        Assert.True(a.Count >= 4, $"only {a.Count} episodes finished");
        for (int i = 0; i < a.Count; i++)
        {
            var (e, n) = (a[i].Episode, b[i].Episode);
            Assert.Equal(e.Response, n.Response);
            int t = e.Response.Length;
            for (int j = 0; j < t; j++)
            {
                bool charged = j == t - 1 && !e.Terminated;
                float expected = charged ? (e.PerToken[j] + 0.5f) / t - 0.5f : e.PerToken[j] / t;
                Assert.True(Math.Abs(expected - n.PerToken[j]) <= 1e-6, $"episode {i} token {j}: {n.PerToken[j]} vs {expected}");
            }
        }
        var scored = mean.Score(b.Select(x => x.Prompt).ToList(), b.Select(x => x.Episode.Response).ToList());
        for (int i = 0; i < b.Count; i++)
            for (int j = 0; j < scored[i].PerToken.Length; j++)
                Assert.True(Math.Abs(scored[i].PerToken[j] - b[i].Episode.PerToken[j]) <= 1e-5);
    }

    [Fact]
    public void Token_mode_makes_every_content_token_a_segment_and_eos_gets_nothing()
    {
        using var env = Make(Bundle.Defaults with { Reading = RewardReading.Token });
        foreach (var (_, e, _) in Run(env, 30, 4).Where(x => x.Episode.Terminated))
        {
            Assert.Equal(e.Response.Length - 1, e.Segments.Count);
            Assert.All(e.Segments, s => Assert.Equal(s.Start, s.End));
            Assert.Equal(0f, e.PerToken[^1]);
        }
    }

    [Fact]
    public void Bandit_pays_only_at_the_end()
    {
        foreach (var delivery in Enum.GetValues<RewardDelivery>())
        {
            using var env = Make(Bundle.Defaults with { Reading = RewardReading.Bandit, Delivery = delivery });
            foreach (var (_, e, paid) in Run(env, 30, 5))
            {
                Assert.All(paid.Take(paid.Count - 1), r => Assert.Equal(0f, r));
                Assert.All(e.PerToken.Take(e.PerToken.Length - 1), r => Assert.Equal(0f, r));
                Assert.Single(e.Segments);
            }
        }
    }

    [Fact]
    public void Even_split_sums_to_the_normalized_segment_reward()
    {
        // A threshold no entropy reaches: one segment of every content token, so the split is visible.
        using var env = Make(Bundle.Defaults with { Interpolation = Interpolation.Even, Reading = RewardReading.Segment(100) });
        var episodes = Run(env, 30, 6);
        Assert.Contains(episodes, e => e.Episode.Segments.Any(s => s.Length > 1));
        foreach (var (_, e, _) in episodes)
            for (int k = 0; k < e.Segments.Count; k++)
            {
                double sum = 0;
                for (int j = e.Segments[k].Start; j <= e.Segments[k].End; j++) sum += e.PerToken[j];
                Assert.Equal(Math.Clamp(e.NormalizedSegmentRewards[k], -10 * e.Segments[k].Length, 10 * e.Segments[k].Length), sum, 4);
            }
    }

    [Fact]
    public void Truncated_episodes_follow_the_missing_eos_rule()
    {
        foreach (var rule in Enum.GetValues<MissingEosRule>())
        {
            var options = Bundle.Defaults with { MissingEos = rule, MissingEosPenalty = 0.7, Reading = RewardReading.Token };
            using var env = Make(options, n: 2);
            env.Reset(1);
            StepResult? r = null;
            for (int s = 0; s < options.MaxNewTokens; s++) r = env.Step([5, 6]);
            Assert.True(r!.Truncated[0] && !r.Terminated[0]);
            var e = r.Episodes[0]!;
            Assert.True(e.Truncated && !e.Terminated);
            if (rule == MissingEosRule.Overwrite)
            {
                // Scored as if the last token were EOS: it belongs to no segment and earns nothing.
                Assert.Equal(options.MaxNewTokens - 1, e.Segments.Count);
                Assert.Equal(0f, e.PerToken[^1]);
            }
            else
            {
                Assert.Equal(options.MaxNewTokens, e.Segments.Count);
                Assert.Equal((float)e.NormalizedSegmentRewards[^1] - 0.7f, e.PerToken[^1], 4);
            }
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_prompts_and_rewards()
    {
        using var a = Make();
        using var b = Make();
        var ea = Run(a, 25, 9);
        var eb = Run(b, 25, 9);
        Assert.Equal(ea.Select(e => e.Prompt), eb.Select(e => e.Prompt));
        Assert.Equal(ea.Select(e => e.Episode.PerToken), eb.Select(e => e.Episode.PerToken));
        Assert.All(ea, e => Assert.NotNull(e.Episode.Gold));
    }

    [Fact]
    public void Bad_calls_are_rejected_and_leave_the_state_unchanged()
    {
        using var env = Make(n: 2, autoreset: AutoresetMode.Disabled);
        using var twin = Make(n: 2, autoreset: AutoresetMode.Disabled);
        env.Reset(2);
        twin.Reset(2);
        Assert.Throws<ArgumentOutOfRangeException>(() => env.Step([5, env.Spec.VocabSize]));
        Assert.Throws<ArgumentOutOfRangeException>(() => env.Step([-7, 5]));
        Assert.Throws<ArgumentException>(() => env.Step([5]));
        var r1 = env.Step([5, Eos]).RefLogProb.ToArray();
        var r2 = twin.Step([5, Eos]).RefLogProb.ToArray();
        Assert.Equal(r2, r1);
        var ex = Assert.Throws<InvalidOperationException>(() => env.Step([6, 6])); // sub-env 1 finished, autoreset disabled
        Assert.Contains("sub-env 1", ex.Message);
        Assert.Equal(twin.Step([6, EnvSpec.NoAction]).RefLogProb[0], env.Step([6, EnvSpec.NoAction]).RefLogProb[0]);
        Assert.Contains("interpolation", Assert.Throws<ArgumentException>(() => EnvOptions.Parse<Interpolation>("cubic", "interpolation")).Message);
        Assert.Throws<InvalidOperationException>(() => new TextVectorEnv(Bundle, 1).Step([5]));
    }

    [Theory]
    [InlineData(int.MaxValue)] // the prompt + budget + 1 sum would wrap around in int and pass the check
    [InlineData(100_000)]
    public void A_budget_longer_than_the_models_context_is_refused_at_construction(int maxNewTokens)
    {
        var tooLong = Assert.Throws<ArgumentException>(() => new TextVectorEnv(Bundle, 1, Bundle.Defaults with { MaxNewTokens = maxNewTokens }));
        Assert.Contains($"max_new_tokens {maxNewTokens}", tooLong.Message);
        Assert.Contains($"max_seq_len {Bundle.MaxSequenceLength}", tooLong.Message);
    }

    [Fact]
    public void Masked_reset_restarts_only_the_chosen_sub_envs()
    {
        using var env = Make(n: 3, autoreset: AutoresetMode.Disabled);
        var first = env.Reset(8);
        env.Step([5, Eos, 6]);
        var again = env.Reset(options: new ResetOptions { Mask = [false, true, false] });
        Assert.Equal(first.Prompts[0], again.Prompts[0]);
        var r = env.Step([7, 8, 9]); // sub-env 1 runs again
        Assert.False(r.Terminated[1]);
    }

    [Fact]
    public void Score_counts_the_eos_in_the_budget_as_a_rollout_does()
    {
        using var env = Make(Bundle.Defaults with { MaxNewTokens = 4 });
        var prompt = env.Reset(2).Prompts[0];
        int[] full = [5, 6, 7, Eos], truncated = [5, 6, 7, 8], over = [5, 6, 7, 8, Eos];
        var scored = env.Score([prompt, prompt], [full, truncated]);
        Assert.Equal(4, scored[0].Response.Length);
        Assert.Equal(4, scored[1].Response.Length);
        var e = Assert.Throws<ArgumentException>(() => env.Score([prompt], [over]));
        Assert.Contains("5 tokens through its first EOS", e.Message);
        Assert.Contains("max_new_tokens 4", e.Message);
    }

    [Fact]
    public void A_first_reset_takes_a_mask_of_every_sub_env_as_a_full_reset_and_refuses_a_partial_one()
    {
        using var env = Make(n: 3, autoreset: AutoresetMode.Disabled);
        var partial = Assert.Throws<InvalidOperationException>(() => env.Reset(8, new ResetOptions { Mask = [true, false, true] }));
        Assert.Contains("first Reset", partial.Message);
        using var plain = Make(n: 3, autoreset: AutoresetMode.Disabled);
        var expected = plain.Reset(8);
        var reset = env.Reset(8, new ResetOptions { Mask = [true, true, true] });
        Assert.Equal(expected.PromptIds, reset.PromptIds);
        Assert.Equal(plain.Step([5, 6, Eos]).RefLogProb.ToArray(), env.Step([5, 6, Eos]).RefLogProb.ToArray());
    }
}
