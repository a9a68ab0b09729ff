using System.Diagnostics;
using RlhfGym.Agents.Policies;
using RlhfGym.Env.Core;
using RlhfGym.Models;

namespace RlhfGym.Agents.Rollouts;

/// <summary>
/// Collects one episode per sub-env: Reset (optionally k sub-envs per prompt), then step until every sub-env has
/// finished its first episode. The policy samples through its KV cache; a sub-env whose episode is over gets a filler
/// (NoAction, or EOS for a sub-env the env has autoreset) until the slowest one finishes. Works on any
/// <see cref="IVectorEnv"/>, local or remote. An episode a sharded env lost with its server (<see cref="StepResult.Lost"/>)
/// has no rewards to learn from: it is left out, with the rest of its group (a group baseline needs every member); when
/// nothing is left, the rollout is collected again.
/// </summary>
public static class RolloutCollector
{
    /// <summary>Collections in a row that may lose every episode before the rollout gives up.</summary>
    public const int MaxAttempts = 3;

    public static Rollout Collect(IVectorEnv env, PolicyModel policy, Sampler sampler, long seed, int groupSize)
    {
        int lost = 0;
        for (int attempt = 1; ; attempt++)
        {
            // A retry draws other prompts: the same seed could meet the same failure at the same step.
            var rollout = CollectOnce(env, policy, sampler, seed + (attempt - 1) * 7919L, groupSize);
            lost += rollout.LostEpisodes;
            if (rollout.Episodes.Count > 0) return rollout with { LostEpisodes = lost };
            if (attempt == MaxAttempts)
                throw new InvalidOperationException($"{MaxAttempts} rollouts in a row lost every episode group to lost env servers: the servers are failing faster than an episode runs");
        }
    }

    private static Rollout CollectOnce(IVectorEnv env, PolicyModel policy, Sampler sampler, long seed, int groupSize)
    {
        var spec = env.Spec;
        int n = spec.NumEnvs, eos = spec.EosIds[0];
        var clock = Stopwatch.StartNew();
        double envSeconds = 0;
        var envClock = Stopwatch.StartNew();
        var reset = env.Reset(seed, new ResetOptions { GroupSize = groupSize });
        envSeconds += envClock.Elapsed.TotalSeconds;
        policy.Begin(reset.Prompts, spec.MaxNewTokens, spec.PadId);

        var tokens = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var paid = Enumerable.Range(0, n).Select(_ => new List<float>()).ToArray();
        var refLogProbs = Enumerable.Range(0, n).Select(_ => new List<float>()).ToArray();
        var episodes = new EpisodeSample?[n];
        var done = new bool[n];      // its first episode is over (kept in episodes, or lost)
        var lost = new bool[n];
        var autoreset = new bool[n]; // the env restarted this sub-env after its first episode
        var actions = new int[n];
        long steps = 0;
        while (done.Any(d => !d))
        {
            var sampled = policy.Sample(sampler);
            for (int b = 0; b < n; b++)
                actions[b] = !done[b] ? sampled[b]
                    : spec.Autoreset == AutoresetMode.Disabled ? EnvSpec.NoAction
                    : autoreset[b] ? eos : EnvSpec.NoAction; // the reset step ignores its action; later ones end fast
            envClock.Restart();
            var r = env.Step(actions);
            envSeconds += envClock.Elapsed.TotalSeconds;
            steps++;
            for (int b = 0; b < n; b++)
            {
                if (done[b])
                {
                    if (r.ResetPrompts[b] is not null) autoreset[b] = true;
                    continue;
                }
                if (r.Lost[b])
                {
                    done[b] = lost[b] = true;
                    continue;
                }
                tokens[b].Add(actions[b]);
                paid[b].Add(r.Rewards[b]);
                refLogProbs[b].Add(r.RefLogProb[b]);
                if (!r.Terminated[b] && !r.Truncated[b]) continue;
                done[b] = true;
                var info = r.Episodes[b];
                var rewards = info?.PerToken ?? paid[b].ToArray(); // the per-token vector when the env sends one
                if (spec.Options.Delivery == Env.Bundles.RewardDelivery.Online) rewards = paid[b].ToArray();
                episodes[b] = new EpisodeSample(reset.Prompts[b], tokens[b].ToArray(), (float[])rewards.Clone(), refLogProbs[b].ToArray(),
                    r.Terminated[b], info?.Gold, b / Math.Max(1, groupSize))
                {
                    StepEnds = info?.Segments.Select(s => s.End).ToArray() ?? [],
                };
            }
            // Keep the policy's cache in step with the batch: fillers for finished rows.
            for (int b = 0; b < n; b++) if (done[b] && actions[b] == EnvSpec.NoAction) actions[b] = eos;
            if (done.Any(d => !d)) policy.Advance(actions);
        }
        int group = Math.Max(1, groupSize);
        var groupLost = new bool[(n + group - 1) / group];
        for (int b = 0; b < n; b++) groupLost[b / group] |= lost[b];
        var kept = episodes.Where((_, b) => !groupLost[b / group]).Select(e => e!).ToList();
        return new Rollout(kept, clock.Elapsed.TotalSeconds, steps, envSeconds) { LostEpisodes = lost.Count(l => l), DroppedEpisodes = n - kept.Count };
    }
}
