namespace RlhfGym.Env.Core;

/// <summary>One check's outcome.</summary>
public sealed record EnvCheck(string Name, bool Passed, string Detail);

public sealed record EnvCheckReport(IReadOnlyList<EnvCheck> Checks)
{
    public bool Passed => Checks.All(c => c.Passed);
    public IEnumerable<EnvCheck> Failures => Checks.Where(c => !c.Passed);
}

/// <summary>
/// Runs an env through the contract, in the spirit of gymnasium's check_env: spec sanity, seeding determinism,
/// terminated/truncated exclusivity, finite rewards and infos, the truncation budget, the declared autoreset behaviour,
/// rejection of bad actions without a state change, Episode-delivery totals, and (for scoring envs) step-vs-score
/// agreement. It only uses <see cref="IVectorEnv"/> (and <see cref="IScoringEnv"/> when present), so it works on
/// local and remote envs alike. Each check reports what it saw; a check that throws is a failure, not a crash.
/// </summary>
public static class EnvChecker
{
    public const double ScoreTolerance = 1e-4;

    public static EnvCheckReport Check(IVectorEnv env, long seed = 0, int steps = 48)
    {
        var checks = new List<EnvCheck>();
        void Run(string name, Func<string> check)
        {
            try { checks.Add(new EnvCheck(name, true, check())); }
            catch (CheckFailed e) { checks.Add(new EnvCheck(name, false, e.Message)); }
            catch (Exception e) { checks.Add(new EnvCheck(name, false, $"threw {e.GetType().Name}: {e.Message}")); }
        }
        var spec = env.Spec;
        Run("spec", () =>
        {
            Require(spec.NumEnvs > 0, $"num_envs {spec.NumEnvs}");
            Require(spec.VocabSize > 0, $"vocab_size {spec.VocabSize}");
            Require(spec.MaxNewTokens > 0, $"max_new_tokens {spec.MaxNewTokens}");
            Require(spec.EosIds.Count > 0 && spec.EosIds.All(e => e >= 0 && e < spec.VocabSize), "EOS ids must be token ids");
            return $"{spec.NumEnvs} envs, vocab {spec.VocabSize}, budget {spec.MaxNewTokens}, autoreset {spec.Autoreset}";
        });
        Run("reset seeding", () =>
        {
            var a = env.Reset(seed);
            var b = env.Reset(seed);
            Require(a.Prompts.Length == spec.NumEnvs, $"reset returned {a.Prompts.Length} prompts for {spec.NumEnvs} envs");
            Require(a.Prompts.Zip(b.Prompts).All(p => p.First.SequenceEqual(p.Second)), "the same seed gave different prompts");
            Require(a.Prompts.All(p => p.Length > 0 && p.All(t => t >= 0 && t < spec.VocabSize)), "a prompt holds an invalid token id");
            return "same seed → same prompts";
        });
        Trace? first = null;
        Run("step determinism", () =>
        {
            first = Roll(env, seed, steps);
            var second = Roll(env, seed, steps);
            Require(first.Flags.SequenceEqual(second.Flags), "the same seed and actions gave different terminated/truncated flags");
            Require(first.Rewards.Count == second.Rewards.Count, "the same seed and actions gave a different number of rewards");
            // Bit for bit when the env steps alone; a server that batches this session with others' may sum in another
            // order (docs/env.md, "Reset"), so fp32 rounding is allowed, and said.
            float worst = first.Rewards.Zip(second.Rewards, (a, b) => Math.Abs(a - b)).DefaultIfEmpty(0f).Max();
            Require(worst <= ScoreTolerance, $"the same seed and actions gave different rewards (largest difference {worst:G3}, above {ScoreTolerance})");
            return worst == 0 ? $"{steps} steps reproduced exactly"
                : $"{steps} steps reproduced to fp32 rounding (largest reward difference {worst:G3}; exact when the env steps alone)";
        });
        Run("rewards and infos finite", () =>
        {
            var t = first ?? Roll(env, seed, steps);
            Require(t.Rewards.All(float.IsFinite), "a reward is not finite");
            Require(t.LogProbs.All(v => float.IsFinite(v) && v <= 1e-4f), "a reference log-prob is not finite or above 0");
            Require(t.Entropies.All(v => float.IsFinite(v) && v >= -1e-4f), "a reference entropy is not finite or negative");
            return $"{t.Rewards.Count} rewards finite";
        });
        Run("terminated xor truncated", () =>
        {
            var t = first ?? Roll(env, seed, steps);
            Require(t.Flags.All(f => !(f.Terminated && f.Truncated)), "a step was both terminated and truncated");
            Require(t.Episodes.Count > 0, "no episode finished");
            return $"{t.Episodes.Count} episodes finished";
        });
        Run("truncation at the budget", () =>
        {
            env.Reset(seed);
            int nonEos = Enumerable.Range(0, spec.VocabSize).First(i => !spec.EosIds.Contains(i) && i != spec.PadId);
            var actions = Enumerable.Repeat(nonEos, spec.NumEnvs).ToArray();
            for (int s = 1; s <= spec.MaxNewTokens; s++)
            {
                var r = env.Step(actions);
                bool last = s == spec.MaxNewTokens;
                for (int b = 0; b < spec.NumEnvs; b++)
                {
                    Require(!r.Terminated[b], $"sub-env {b} terminated without EOS at step {s}");
                    Require(r.Truncated[b] == last, last ? $"sub-env {b} not truncated at the budget" : $"sub-env {b} truncated early at step {s}");
                }
            }
            return $"truncated after exactly {spec.MaxNewTokens} tokens";
        });
        Run("episode totals", () =>
        {
            var t = first ?? Roll(env, seed, steps);
            if (spec.Options.Delivery != Bundles.RewardDelivery.Episode) return "online delivery: skipped";
            foreach (var (_, episode, paid) in t.Episodes)
                Require(Math.Abs(paid - episode.Total) < 1e-3, $"final-step reward {paid} but the per-token vector sums to {episode.Total}");
            return "final-step reward = sum of the per-token vector";
        });
        Run("autoreset", () => spec.Autoreset == AutoresetMode.NextStep ? CheckNextStep(env, seed) : CheckDisabled(env, seed));
        Run("bad actions rejected without a state change", () =>
        {
            env.Reset(seed);
            var good = Enumerable.Repeat(NonEos(spec), spec.NumEnvs).ToArray();
            var bad = (int[])good.Clone();
            bad[0] = spec.VocabSize;
            Require(Throws(() => env.Step(bad)), $"action {spec.VocabSize} (outside the vocabulary) was accepted");
            Require(Throws(() => env.Step(good.AsSpan(0, spec.NumEnvs - 1).ToArray().Append(-5).ToArray())), "action -5 was accepted");
            Require(Throws(() => env.Step(good.Concat([good[0]]).ToArray())), "a batch of the wrong length was accepted");
            float afterBad = env.Step(good).RefLogProb[0];
            env.Reset(seed);
            float clean = env.Step(good).RefLogProb[0];
            Require(afterBad == clean, $"the first step after rejected calls differs from a clean one ({afterBad} vs {clean})");
            return "out-of-vocabulary, negative and wrong-length actions rejected; state unchanged";
        });
        if (env is IScoringEnv scoring)
            Run("step vs score", () =>
            {
                var t = first ?? Roll(env, seed, steps);
                var scored = scoring.Score(t.Episodes.Select(e => e.Prompt).ToList(), t.Episodes.Select(e => e.Episode.Response).ToList());
                double worst = 0;
                for (int i = 0; i < scored.Count; i++)
                    for (int j = 0; j < scored[i].PerToken.Length; j++)
                        worst = Math.Max(worst, Math.Abs(scored[i].PerToken[j] - t.Episodes[i].Episode.PerToken[j]));
                Require(worst <= ScoreTolerance, $"per-token rewards differ by up to {worst:G3} between stepping and scoring");
                return $"{scored.Count} episodes agree within {worst:G3}";
            });
        return new EnvCheckReport(checks);
    }

    private sealed class CheckFailed(string message) : Exception(message);

    private static void Require(bool condition, string message)
    {
        if (!condition) throw new CheckFailed(message);
    }

    private static bool Throws(Action action)
    {
        try { action(); return false; }
        catch (Exception e) when (e is not CheckFailed) { return true; }
    }

    private static int NonEos(EnvSpec spec) => Enumerable.Range(0, spec.VocabSize).First(i => !spec.EosIds.Contains(i) && i != spec.PadId);

    private sealed record Trace(List<float> Rewards, List<(bool Terminated, bool Truncated)> Flags, List<float> LogProbs,
        List<float> Entropies, List<(int[] Prompt, EpisodeRewards Episode, float Paid)> Episodes);

    // Seeded actions: EOS with probability 1/6, otherwise any other token; NoAction for finished sub-envs when autoreset is disabled.
    private static Trace Roll(IVectorEnv env, long seed, int steps)
    {
        var spec = env.Spec;
        var rng = new Random((int)(seed & 0x7fffffff) + 17);
        var prompts = env.Reset(seed).Prompts.ToArray();
        var finished = new bool[spec.NumEnvs];
        var trace = new Trace([], [], [], [], []);
        var actions = new int[spec.NumEnvs];
        for (int s = 0; s < steps && !finished.All(f => f); s++)
        {
            for (int b = 0; b < actions.Length; b++)
                actions[b] = finished[b] ? EnvSpec.NoAction
                    : rng.Next(6) == 0 ? spec.EosIds[0] : NonEos(spec) + rng.Next(spec.VocabSize - NonEos(spec));
            for (int b = 0; b < actions.Length; b++)
                if (spec.EosIds.Contains(actions[b]) && actions[b] != spec.EosIds[0]) actions[b] = spec.EosIds[0];
            var r = env.Step(actions);
            for (int b = 0; b < actions.Length; b++)
            {
                if (r.ResetPrompts[b] is { } fresh) { prompts[b] = fresh; continue; }
                if (finished[b]) continue;
                trace.Rewards.Add(r.Rewards[b]);
                trace.Flags.Add((r.Terminated[b], r.Truncated[b]));
                trace.LogProbs.Add(r.RefLogProb[b]);
                trace.Entropies.Add(r.RefEntropy[b]);
                if (r.Episodes[b] is { } e)
                {
                    trace.Episodes.Add((prompts[b], e, r.Rewards[b]));
                    if (spec.Autoreset == AutoresetMode.Disabled) finished[b] = true;
                }
            }
        }
        return trace;
    }

    private static string CheckNextStep(IVectorEnv env, long seed)
    {
        var spec = env.Spec;
        env.Reset(seed);
        var actions = Enumerable.Repeat(spec.EosIds[0], spec.NumEnvs).ToArray();
        var ended = env.Step(actions);
        Require(Enumerable.Range(0, spec.NumEnvs).All(b => ended.Terminated[b]), "EOS did not terminate every sub-env");
        var next = env.Step(Enumerable.Repeat(EnvSpec.NoAction, spec.NumEnvs).ToArray());
        for (int b = 0; b < spec.NumEnvs; b++)
        {
            Require(next.ResetPrompts[b] is { Length: > 0 }, $"sub-env {b} was not reset on the step after its episode ended");
            Require(next.Rewards[b] == 0 && !next.Terminated[b] && !next.Truncated[b], $"sub-env {b}'s reset step paid a reward or ended");
        }
        var resumed = env.Step(Enumerable.Repeat(NonEos(spec), spec.NumEnvs).ToArray());
        Require(Enumerable.Range(0, spec.NumEnvs).All(b => !resumed.Terminated[b] && resumed.ResetPrompts[b] is null), "the new episode did not start");
        return "the step after an episode ends resets it (action ignored, reward 0, not done)";
    }

    private static string CheckDisabled(IVectorEnv env, long seed)
    {
        var spec = env.Spec;
        env.Reset(seed);
        env.Step(Enumerable.Repeat(spec.EosIds[0], spec.NumEnvs).ToArray());
        Require(Throws(() => env.Step(Enumerable.Repeat(NonEos(spec), spec.NumEnvs).ToArray())), "stepping a finished sub-env with a token was accepted");
        Require(Throws(() => env.Step(Enumerable.Repeat(EnvSpec.NoAction, spec.NumEnvs).ToArray())), "stepping when every sub-env has finished was accepted");
        env.Reset(seed);
        return "finished sub-envs reject tokens until Reset";
    }
}
