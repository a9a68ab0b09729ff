using RlhfGym.Env.Core;
using RlhfGym.Transport.Client;

namespace RlhfGym.Transport.Tests;

/// <summary>
/// Cross-session batching over real sockets: sessions with different seeds, options and sizes stepping and scoring at
/// once against a batching server get, step for step and score for score, what each gets alone from a server that does
/// not batch.
/// </summary>
public class CrossSessionBatchingTests
{
    private sealed record Client(int Seed, int NumEnvs, Dictionary<string, string>? Options);

    private static readonly Client[] Clients =
    [
        new(21, 4, null),
        new(22, 2, new() { ["c_ent"] = "0.5", ["normalizer"] = "none" }),
        new(23, 3, new() { ["mode"] = "token", ["delivery"] = "online" }),
        new(24, 4, new() { ["mode"] = "bandit" }),
        new(25, 1, null),
    ];

    private const int Steps = 60;

    [Fact]
    public async Task Concurrent_sessions_with_different_seeds_and_options_get_what_each_gets_alone()
    {
        List<float[]>[] alone;
        await using (var plain = await TestServer.Start(batchSessions: false))
        {
            alone = Clients.Select(c => Run(plain.Address, c)).ToArray();
            var unbatched = EnvServerProbe.Health(plain.Address, TimeSpan.FromSeconds(10));
            Assert.Equal((0L, 0L), (unbatched.BatchedSteps, unbatched.StepBatches));
        }

        await using var batching = await TestServer.Start(batchWindowMs: 5);
        using var start = new Barrier(Clients.Length);
        var together = await Task.WhenAll(Clients.Select(c => Task.Run(() => Run(batching.Address, c, start))));
        var health = EnvServerProbe.Health(batching.Address, TimeSpan.FromSeconds(10));
        Assert.True(health.BatchedSteps >= Steps, $"the sessions' steps should have met in batches; batched_steps {health.BatchedSteps}");
        // Each batched forward ran two to all of the sessions' steps.
        Assert.InRange(health.BatchedSteps, 2 * health.StepBatches, Clients.Length * health.StepBatches);
        Assert.True(health.BatchedResets >= 2, $"the sessions' mid-run resets should have met in a batch; batched_resets {health.BatchedResets}");
        Assert.True(health.BatchedScores >= 2, $"the sessions' scores should have met in batches; batched_scores {health.BatchedScores}");

        for (int c = 0; c < Clients.Length; c++)
            for (int s = 0; s < Steps; s++)
                for (int i = 0; i < alone[c][s].Length; i++)
                {
                    float x = alone[c][s][i], y = together[c][s][i];
                    Assert.True((float.IsNaN(x) && float.IsNaN(y)) || Math.Abs(x - y) <= 1e-4f,
                        $"client {c} (seed {Clients[c].Seed}), step {s} (or the score after it), field {i}: {y} batched vs {x} alone");
                }
    }

    [Fact]
    public async Task A_bad_score_in_a_batch_is_only_its_own_error_and_the_server_goes_on()
    {
        await using var batching = await TestServer.Start(batchWindowMs: 20);
        using var good = new RemoteVectorEnv(batching.Address, numEnvs: 2);
        using var bad = new RemoteVectorEnv(batching.Address, numEnvs: 2);
        var spec = good.Spec;
        int[] response = [4, spec.EosIds[0]];
        int[] longPrompt = Enumerable.Repeat(3, 4096).ToArray(); // longer than any test model's max_seq_len
        for (int round = 0; round < 5; round++)
        {
            using var start = new Barrier(2);
            var goodScore = Task.Run(() => { start.SignalAndWait(); return good.Score([[5, 6, 7]], [response]); });
            var badScore = Task.Run(() => { start.SignalAndWait(); return bad.Score([longPrompt], [response]); });
            Assert.Single(await goodScore);
            var error = await Assert.ThrowsAsync<RemoteEnvException>(() => badScore);
            Assert.Equal("invalid_argument", error.Code);
            Assert.Contains("max_seq_len", error.Message);
        }
        var health = EnvServerProbe.Health(batching.Address, TimeSpan.FromSeconds(10));
        Assert.True(health.BatchedScores >= 2, $"the two sessions' scores should have met in a batch at least once; batched_scores {health.BatchedScores}");
        good.Reset(1);
        Assert.Equal(2, good.Step([5, 6]).Rewards.Length); // still serving
    }

    // Every step's readings per sub-env: reward, log π_ref, entropy, terminated, truncated, reset (1/0); every 10th step
    // is followed by a score of a few pairs, whose per-token rewards and episode totals are added to its readings; step 30
    // is preceded by a reset with a new seed, whose prompts (token sums) are added to the readings of the step before it.
    private static List<float[]> Run(string address, Client client, Barrier? start = null)
    {
        using var env = new RemoteVectorEnv(address, numEnvs: client.NumEnvs, options: client.Options);
        var spec = env.Spec;
        var rng = new Random(client.Seed);
        env.Reset(client.Seed);
        start?.SignalAndWait();
        var actions = new int[client.NumEnvs];
        var steps = new List<float[]>();
        for (int s = 0; s < Steps; s++)
        {
            if (s == 30)
            {
                var reset = env.Reset(client.Seed + 100);
                steps[^1] = [.. steps[^1], .. reset.Prompts.Select(p => (float)p.Sum())];
            }
            for (int b = 0; b < actions.Length; b++)
                actions[b] = rng.Next(8) == 0 ? spec.EosIds[0] : 3 + rng.Next(spec.VocabSize - 3);
            var r = env.Step(actions);
            steps.Add(Enumerable.Range(0, client.NumEnvs).SelectMany(b => new[]
            {
                r.Rewards[b], r.RefLogProb[b], r.RefEntropy[b], r.Terminated[b] ? 1f : 0f, r.Truncated[b] ? 1f : 0f, r.ResetPrompts[b] is null ? 0f : 1f,
            }).ToArray());
            if (s % 10 == 9)
            {
                var prompts = Enumerable.Range(0, 1 + client.NumEnvs).Select(_ => Enumerable.Range(0, 4).Select(_ => 3 + rng.Next(spec.VocabSize - 3)).ToArray()).ToList();
                var responses = prompts.Select((_, k) => Enumerable.Range(0, 2 + k).Select(t => t == 1 + k && k % 2 == 0 ? spec.EosIds[0] : 3 + rng.Next(spec.VocabSize - 3)).ToArray()).ToList();
                var scored = env.Score(prompts, responses);
                steps[^1] = [.. steps[^1], .. scored.SelectMany(e => e.PerToken.Append((float)e.Total))];
            }
        }
        return steps;
    }
}
