using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Tests;

/// <summary>
/// Envs that share one decoder (a server's sessions) and step together as one batch pay exactly what each pays alone
/// through its own models, whatever their seeds, options and sizes, and whichever of them step in a round (so the
/// decoder steps spans of its rows that start and end anywhere, with rows inside them left out).
/// </summary>
public class SharedDecoderTests
{
    private static readonly EnvBundle Bundle = EnvBundle.Load(TestBundles.SegmentBundle);
    private const float Tolerance = 1e-4f; // a batch of more rows may sum in another order: fp32 rounding, no more

    // One env's part in the run: its options, size, seed and the rounds it steps in.
    private sealed record Part(EnvOptions Options, int NumEnvs, int Seed, Func<int, bool> StepsIn, AutoresetMode Autoreset = AutoresetMode.NextStep);

    private static readonly Part[] Plan =
    [
        new(Bundle.Defaults, 4, 11, round => round % 4 != 3),
        new(Bundle.Defaults with { Reading = RewardReading.Segment(0.5), Normalizer = NormalizerKind.None }, 2, 12, round => round % 2 == 0),
        new(Bundle.Defaults with { Reading = RewardReading.Token, Delivery = RewardDelivery.Online }, 3, 13, round => round % 3 != 1),
        new(Bundle.Defaults with { Reading = RewardReading.Bandit }, 2, 14, round => round % 5 < 3, AutoresetMode.Disabled),
    ];

    [Fact]
    public void Envs_stepped_together_through_one_decoder_pay_what_each_pays_alone()
    {
        var parts = Plan.ToArray(); // one part is replaced mid-run
        using var decoders = new EnvDecoders();
        var shared = parts.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options, p.Autoreset, shared: decoders)).ToList();
        var alone = parts.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options, p.Autoreset)).ToList();
        try
        {
            var decoder = shared[0].Decoder;
            Assert.All(shared, env => Assert.Same(decoder, env.Decoder));
            Assert.Equal(parts.Sum(p => p.NumEnvs), decoder.Rows);
            Assert.All(alone, env => Assert.NotSame(decoder, env.Decoder));
            for (int i = 0; i < parts.Length; i++)
                Assert.Equal(alone[i].Reset(parts[i].Seed).PromptIds, shared[i].Reset(parts[i].Seed).PromptIds);

            var rngs = parts.Select(p => new Random(p.Seed)).ToArray();
            var finished = parts.Select(p => new bool[p.NumEnvs]).ToArray(); // disabled autoreset: sub-envs to pass NoAction
            int batched = 0, partial = 0, episodes = 0;
            for (int round = 0; round < 70; round++)
            {
                var stepping = Enumerable.Range(0, parts.Length).Where(i => parts[i].StepsIn(round)).ToList();
                var actions = stepping.ToDictionary(i => i, i => Actions(rngs[i], finished[i], parts[i].NumEnvs));
                var together = TextVectorEnv.StepTogether(stepping.Select(i => (shared[i], actions[i])).ToList());
                batched++;
                if (stepping.Count < parts.Length) partial++;
                for (int k = 0; k < stepping.Count; k++)
                {
                    int i = stepping[k];
                    var (result, error) = together[k];
                    Assert.Null(error);
                    var expected = alone[i].Step(actions[i]);
                    AssertSame(expected, result!, $"round {round}, env {i}");
                    for (int b = 0; b < parts[i].NumEnvs; b++)
                    {
                        if (expected.Episodes[b] is not null) episodes++;
                        finished[i][b] = parts[i].Autoreset == AutoresetMode.Disabled && (finished[i][b] || expected.Episodes[b] is not null);
                    }
                }
                // Disabled autoreset: once every sub-env has finished, a masked reset (all of them) on both sides.
                int d = parts.Length - 1;
                if (finished[d].All(f => f))
                {
                    var mask = new ResetOptions { Mask = [true, true] };
                    Assert.Equal(alone[d].Reset(null, mask).PromptIds, shared[d].Reset(null, mask).PromptIds);
                    Array.Clear(finished[d]);
                }
                if (round == 30)
                {
                    // A session closes and another, of another size, takes its rows and more.
                    shared[1].Dispose();
                    alone[1].Dispose();
                    parts[1] = parts[1] with { NumEnvs = 3, Seed = 15 };
                    shared[1] = new TextVectorEnv(Bundle, 3, parts[1].Options, shared: decoders);
                    alone[1] = new TextVectorEnv(Bundle, 3, parts[1].Options);
                    Assert.Equal(alone[1].Reset(15).PromptIds, shared[1].Reset(15).PromptIds);
                    rngs[1] = new Random(15);
                    finished[1] = new bool[3];
                    Assert.Equal(parts.Sum(p => p.NumEnvs), decoder.RowsInUse);
                }
            }
            Assert.True(partial > 20 && episodes > 20, $"the run must exercise partial rounds and finished episodes ({partial}, {episodes})");
        }
        finally
        {
            foreach (var env in shared.Concat(alone)) env.Dispose();
        }
    }

    [Fact]
    public void A_rejected_step_leaves_that_env_as_it_was_and_the_others_step()
    {
        using var decoders = new EnvDecoders();
        using var good = new TextVectorEnv(Bundle, 2, shared: decoders);
        using var bad = new TextVectorEnv(Bundle, 2, shared: decoders);
        using var goodAlone = new TextVectorEnv(Bundle, 2);
        using var badAlone = new TextVectorEnv(Bundle, 2);
        good.Reset(1);
        goodAlone.Reset(1);
        bad.Reset(2);
        badAlone.Reset(2);
        int[] fine = [5, 6];
        var outcomes = TextVectorEnv.StepTogether([(good, fine), (bad, [5, Bundle.VocabSize])]);
        AssertSame(goodAlone.Step(fine), outcomes[0].Result!, "the good env");
        var error = Assert.IsType<ArgumentOutOfRangeException>(outcomes[1].Error);
        Assert.Contains("sub-env 1", error.Message);
        Assert.Null(outcomes[1].Result);
        // The rejected env did not move: its next step pays what the same step pays its twin that never saw the bad one.
        AssertSame(badAlone.Step(fine), TextVectorEnv.StepTogether([(bad, fine)])[0].Result!, "the rejected env's next step");

        using var other = new TextVectorEnv(Bundle, 2);
        other.Reset(3);
        var mixed = Assert.Throws<ArgumentException>(() => TextVectorEnv.StepTogether([(good, fine), (other, fine)]));
        Assert.Contains("share one decoder", mixed.Message);
        Assert.Throws<ArgumentException>(() => TextVectorEnv.StepTogether([(good, fine), (good, fine)]));
    }

    [Fact]
    public void Envs_reset_together_through_one_decoder_get_what_each_gets_alone_and_a_rejected_reset_changes_nothing()
    {
        using var decoders = new EnvDecoders();
        var shared = Plan.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options, p.Autoreset, shared: decoders)).ToList();
        var alone = Plan.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options, p.Autoreset)).ToList();
        try
        {
            for (int i = 0; i < Plan.Length; i++) Assert.Equal(alone[i].Reset(30 + i).PromptIds, shared[i].Reset(30 + i).PromptIds);
            var rngs = Plan.Select(p => new Random(p.Seed)).ToArray();
            var finished = Plan.Select(p => new bool[p.NumEnvs]).ToArray();
            for (int round = 0; round < 3; round++)
            {
                // Env 0 regroups (pairs share a prompt), env 1 is refused (a group of 3 does not divide 2 sub-envs; its seed
                // must not be taken), env 2 resets with a new seed and env 3 resets only its first sub-env.
                var resets = new List<(TextVectorEnv, long?, ResetOptions?)>
                {
                    (shared[0], null, new ResetOptions { GroupSize = 2 }),
                    (shared[1], 99, new ResetOptions { GroupSize = 3 }),
                    (shared[2], 40 + round, null),
                    (shared[3], null, new ResetOptions { Mask = [true, false] }),
                };
                var together = TextVectorEnv.ResetTogether(resets);
                Assert.Equal(alone[0].Reset(null, new ResetOptions { GroupSize = 2 }).PromptIds, together[0].Result!.PromptIds);
                Assert.Contains("group size 3", Assert.IsType<ArgumentException>(together[1].Error).Message);
                Assert.Null(together[1].Result);
                Assert.Equal(alone[2].Reset(40 + round).PromptIds, together[2].Result!.PromptIds);
                Assert.Equal(alone[3].Reset(null, new ResetOptions { Mask = [true, false] }).PromptIds, together[3].Result!.PromptIds);
                finished[3][0] = false;
                // The caches hold the new prompts: stepping all four together pays what each pays alone.
                for (int step = 0; step < 6; step++)
                {
                    // Env 3 (autoreset disabled) sits out once all its sub-envs have finished.
                    var stepping = Enumerable.Range(0, Plan.Length).Where(i => !finished[i].All(f => f)).ToList();
                    var actions = stepping.ToDictionary(i => i, i => Actions(rngs[i], finished[i], Plan[i].NumEnvs));
                    var stepped = TextVectorEnv.StepTogether(stepping.Select(i => (shared[i], actions[i])).ToList());
                    for (int k = 0; k < stepping.Count; k++)
                    {
                        int i = stepping[k];
                        var expected = alone[i].Step(actions[i]);
                        AssertSame(expected, stepped[k].Result!, $"round {round}, step {step}, env {i}");
                        for (int b = 0; b < Plan[i].NumEnvs; b++)
                            finished[i][b] = Plan[i].Autoreset == AutoresetMode.Disabled && (finished[i][b] || expected.Episodes[b] is not null);
                    }
                }
            }
            // The refused env's generator was left alone: its next unseeded reset draws what its twin's does.
            Assert.Equal(alone[1].Reset().PromptIds, shared[1].Reset().PromptIds);
            Assert.Throws<ArgumentException>(() => TextVectorEnv.ResetTogether([(shared[0], 1, null), (shared[0], 2, null)]));
        }
        finally
        {
            foreach (var env in shared.Concat(alone)) env.Dispose();
        }
    }

    [Fact]
    public void Envs_scored_together_through_one_decoder_get_what_each_scores_alone()
    {
        using var decoders = new EnvDecoders();
        var shared = Plan.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options, shared: decoders)).ToList();
        var alone = Plan.Select(p => new TextVectorEnv(Bundle, p.NumEnvs, p.Options)).ToList();
        try
        {
            var rng = new Random(7);
            // 5 requests (env 0 twice) of 9-25 pairs: 80+ rows, so the shared forwards cross the 64-row batch boundary.
            int[] owners = [0, 1, 2, 0, 3];
            var requests = owners.Select(i => (Env: shared[i], Pairs: Pairs(rng, 9 + rng.Next(17)))).ToList();
            var bad = Pairs(rng, 3);
            bad.Responses[1] = [4, Bundle.VocabSize, Bundle.Tokenizer.EosId];
            requests.Insert(2, (shared[1], bad));

            var together = TextVectorEnv.ScoreTogether(requests.Select(r => (r.Env, (IReadOnlyList<int[]>)r.Pairs.Prompts, (IReadOnlyList<int[]>)r.Pairs.Responses)).ToList());
            Assert.True(requests.Where(r => r.Pairs != bad).Sum(r => r.Pairs.Prompts.Count) > 64);
            for (int k = 0; k < requests.Count; k++)
            {
                var (result, error) = together[k];
                if (requests[k].Pairs == bad)
                {
                    Assert.Null(result);
                    Assert.Contains("pair 1", Assert.IsType<ArgumentOutOfRangeException>(error).Message);
                    continue;
                }
                Assert.Null(error);
                int i = shared.IndexOf(requests[k].Env);
                var expected = alone[i].Score(requests[k].Pairs.Prompts, requests[k].Pairs.Responses);
                Assert.Equal(expected.Count, result!.Count);
                for (int j = 0; j < expected.Count; j++) AssertSameScore(expected[j], result[j], $"request {k} (env {i}), pair {j}");
            }
            // A pair longer than the models take is that request's error, named, alone or together; the others are scored.
            int longest = shared[0].Decoder.MaxSequence;
            int[] longPrompt = Enumerable.Repeat(3, longest).ToArray();
            var tooLong = Assert.Throws<ArgumentException>(() => alone[0].Score([longPrompt], [[4, Bundle.Tokenizer.EosId]]));
            Assert.Contains($"pair 0: prompt ({longest} tokens) + response (2) is longer than the models' max_seq_len {longest}", tooLong.Message);
            var fine = Pairs(rng, 2);
            var mixedLengths = TextVectorEnv.ScoreTogether([(shared[0], [longPrompt], [[4, Bundle.Tokenizer.EosId]]), (shared[2], fine.Prompts, fine.Responses)]);
            Assert.Contains("max_seq_len", Assert.IsType<ArgumentException>(mixedLengths[0].Error).Message);
            Assert.Equal(2, mixedLengths[1].Result!.Count);

            using var other = new TextVectorEnv(Bundle, 1);
            var pairs = Pairs(rng, 1);
            var mixed = Assert.Throws<ArgumentException>(() => TextVectorEnv.ScoreTogether([(shared[0], pairs.Prompts, pairs.Responses), (other, pairs.Prompts, pairs.Responses)]));
            Assert.Contains("share one decoder", mixed.Message);
        }
        finally
        {
            foreach (var env in shared.Concat(alone)) env.Dispose();
        }
    }

    // Pairs as a client scores them: bundle prompts, responses of 1..budget tokens that end with EOS, run out the budget,
    // or carry padding after their EOS.
    private static (List<int[]> Prompts, List<int[]> Responses) Pairs(Random rng, int count)
    {
        var (prompts, responses) = (new List<int[]>(), new List<int[]>());
        int budget = Bundle.Defaults.MaxNewTokens, eos = Bundle.Tokenizer.EosId;
        for (int n = 0; n < count; n++)
        {
            prompts.Add(Bundle.Prompts[rng.Next(Bundle.Prompts.Count)].Tokens);
            var response = Enumerable.Range(0, 1 + rng.Next(budget)).Select(_ => 3 + rng.Next(Bundle.VocabSize - 3)).ToList();
            switch (n % 3)
            {
                case 0: response[^1] = eos; break;
                case 1: if (response.Count < budget - 2) response.AddRange([eos, 0, 0]); break;
            }
            responses.Add(response.ToArray());
        }
        return (prompts, responses);
    }

    private static void AssertSameScore(EpisodeRewards expected, EpisodeRewards actual, string at)
    {
        Assert.Equal(expected.Response, actual.Response);
        Assert.Equal(expected.Terminated, actual.Terminated);
        Assert.Equal(expected.Segments.Count, actual.Segments.Count);
        foreach (var (name, e, a) in new[] { ("per-token", expected.PerToken, actual.PerToken), ("online", expected.Online, actual.Online),
                     ("entropy", expected.Entropies, actual.Entropies), ("log π_ref", expected.RefLogProbs, actual.RefLogProbs) })
        {
            Assert.Equal(e.Length, a.Length);
            for (int t = 0; t < e.Length; t++) Assert.True(Close(e[t], a[t]), $"{at}: {name}[{t}] {a[t]} vs {e[t]} alone");
        }
        for (int k = 0; k < expected.RawSegmentRewards.Length; k++)
            Assert.True(Math.Abs(expected.RawSegmentRewards[k] - actual.RawSegmentRewards[k]) <= Tolerance, $"{at}: raw segment reward {k}");
    }

    [Fact]
    public void The_pool_grows_reuses_free_rows_and_shrinks_from_the_end()
    {
        using var decoders = new EnvDecoders();
        var a = new TextVectorEnv(Bundle, 2, shared: decoders);
        var b = new TextVectorEnv(Bundle, 3, shared: decoders);
        var decoder = a.Decoder;
        Assert.Equal(5, decoder.Rows);
        a.Dispose(); // rows 0-1 free, kept (row 2.. still taken)
        Assert.Equal(5, decoder.Rows);
        Assert.Equal(3, decoder.RowsInUse);
        var c = new TextVectorEnv(Bundle, 1, shared: decoders); // takes a free row
        Assert.Equal(5, decoder.Rows);
        b.Dispose();
        Assert.Equal(1, decoder.Rows); // only c's row 0 is left
        c.Reset(4);
        c.Step([7]);
        c.Dispose();
        Assert.Equal(0, decoder.Rows);
        // Another max_new_tokens is another cache capacity: another decoder; the idle one is let go.
        using var longer = new TextVectorEnv(Bundle, 1, Bundle.Defaults with { MaxNewTokens = Bundle.Defaults.MaxNewTokens + 4 }, shared: decoders);
        Assert.NotSame(decoder, longer.Decoder);
        Assert.Equal(1, decoders.Count);
    }

    private static int[] Actions(Random rng, bool[] finished, int n)
    {
        var actions = new int[n];
        for (int b = 0; b < n; b++)
            actions[b] = finished[b] ? EnvSpec.NoAction : rng.Next(8) == 0 ? Bundle.Tokenizer.EosId : 3 + rng.Next(Bundle.VocabSize - 3);
        return actions;
    }

    private static void AssertSame(StepResult expected, StepResult actual, string where)
    {
        for (int b = 0; b < expected.Rewards.Length; b++)
        {
            string at = $"{where}, sub-env {b}";
            Assert.True(Math.Abs(expected.Rewards[b] - actual.Rewards[b]) <= Tolerance, $"{at}: reward {actual.Rewards[b]} vs {expected.Rewards[b]} alone");
            Assert.True(Close(expected.RefLogProb[b], actual.RefLogProb[b]), $"{at}: log π_ref {actual.RefLogProb[b]} vs {expected.RefLogProb[b]}");
            Assert.True(Close(expected.RefEntropy[b], actual.RefEntropy[b]), $"{at}: entropy {actual.RefEntropy[b]} vs {expected.RefEntropy[b]}");
            Assert.Equal(expected.Terminated[b], actual.Terminated[b]);
            Assert.Equal(expected.Truncated[b], actual.Truncated[b]);
            Assert.Equal(expected.SegmentEnded[b], actual.SegmentEnded[b]);
            Assert.Equal(expected.ResetPromptIds[b], actual.ResetPromptIds[b]);
            Assert.Equal(expected.Episodes[b] is null, actual.Episodes[b] is null);
            if (expected.Episodes[b] is { } e)
            {
                var got = actual.Episodes[b]!;
                Assert.Equal(e.RawSegmentRewards.Length, got.RawSegmentRewards.Length);
                Assert.True(Math.Abs(e.Total - got.Total) <= Tolerance, $"{at}: episode total {got.Total} vs {e.Total} alone");
                Assert.Equal(e.Gold, got.Gold);
            }
        }
    }

    // NaN (no reading: a sub-env that did not run) matches NaN.
    private static bool Close(float x, float y) => (float.IsNaN(x) && float.IsNaN(y)) || Math.Abs(x - y) <= Tolerance;
}
