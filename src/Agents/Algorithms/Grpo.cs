using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Common;
using RlhfGym.Env.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>What a GRPO advantage is built from (DeepSeekMath §4.1.2 and §4.1.3).</summary>
public enum GrpoVariant
{
    /// <summary>One score per response (its task return); every token gets the group-normalized score.</summary>
    Outcome,
    /// <summary>One reward per reward step (the env's segments; single tokens in token mode); a token gets the sum of the
    /// group-normalized rewards of its step and every later one.</summary>
    Process,
}

/// <summary>Where the KL to the reference enters.</summary>
public enum GrpoKl
{
    /// <summary>As a loss term, β·k3 per token (DeepSeekMath eq. 3–4), outside the advantage.</summary>
    Loss,
    /// <summary>As reward shaping, −β(log π_old − log π_ref) per token, the way PPO and REINFORCE here take it.</summary>
    Reward,
}

/// <summary>How the per-token losses of a minibatch are averaged.</summary>
public enum GrpoLossAggregation
{
    /// <summary>GRPO: the mean over each response's tokens (1/|o_i|), then the mean over responses.</summary>
    PerSequence,
    /// <summary>Dr. GRPO: the sum over all tokens divided by a constant (responses × the env's max_new_tokens), so a
    /// long response's tokens weigh as much as a short one's.</summary>
    Constant,
}

public sealed record GrpoOptions
{
    public GrpoVariant Variant { get; init; } = GrpoVariant.Outcome;
    /// <summary>G, responses per prompt (the env's group_size at reset). At least 2: one response has no group to compare with.</summary>
    public int GroupSize { get; init; } = 4;
    /// <summary>ε of the clipped ratio.</summary>
    public double Clip { get; init; } = 0.2;
    /// <summary>μ, passes over each rollout (DeepSeekMath: 1).</summary>
    public int Epochs { get; init; } = 1;
    public int MiniBatchSize { get; init; } = 32;
    public GrpoKl Kl { get; init; } = GrpoKl.Loss;
    /// <summary>Divide by the group's standard deviation. Dr. GRPO sets false (the std favours prompts whose rewards barely vary).</summary>
    public bool ScaleByStd { get; init; } = true;
    public GrpoLossAggregation LossAggregation { get; init; } = GrpoLossAggregation.PerSequence;
    /// <summary>Added to the std in the division, so an all-equal group gives 0 advantages, not NaN.</summary>
    public double StdEpsilon { get; init; } = 1e-4;
    public OptimizerSettings Actor { get; init; } = new() { LearningRate = 2e-4, WarmupFraction = 0.05, Betas = (0.9, 0.95) };

    /// <summary>Dr. GRPO (Liu et al., 2025): no std division and constant loss normalization.</summary>
    public GrpoOptions AsDrGrpo() => this with { ScaleByStd = false, LossAggregation = GrpoLossAggregation.Constant };

    public void Validate()
    {
        if (GroupSize < 2)
            throw new ArgumentOutOfRangeException(nameof(GroupSize), GroupSize, "GRPO needs a group of at least 2 responses per prompt: with 1 there is nothing to compare, every advantage is 0");
        if (!(Clip > 0 && Clip < 1)) throw new ArgumentOutOfRangeException(nameof(Clip), Clip, "GRPO clip ε must be in (0, 1)");
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "GRPO epochs must be >= 1");
        if (MiniBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(MiniBatchSize), MiniBatchSize, "GRPO minibatch size must be >= 1");
        if (!(StdEpsilon > 0)) throw new ArgumentOutOfRangeException(nameof(StdEpsilon), StdEpsilon, "GRPO std epsilon must be > 0");
        Actor.Validate();
    }
}

/// <summary>
/// Group Relative Policy Optimization (Shao et al., 2024, DeepSeekMath §4.1), read top to bottom:
/// 1. the rollout holds G responses per prompt (consecutive sub-envs share a prompt: the env's group_size);
/// 2. score it with the current policy (π_old);
/// 3. advantages without a critic, relative to the group: outcome = (R_i − mean R)/(std R + ε) on every token;
///    process = each reward step's r normalized over all steps of the group, a token's advantage the sum of its step's
///    and every later step's (with KL as reward, the KL reward-to-go −β Σ_{t'≥t} kl_t' is added after normalizing);
/// 4. epochs × minibatches of −min(ρA, clip(ρ, 1 ± ε)A) (+ β·k3 with KL as a loss:
///    k3 = π_ref/π − log(π_ref/π) − 1, the unbiased non-negative estimator), averaged per response then over
///    responses (GRPO) or summed and divided by responses × max_new_tokens (Dr. GRPO); AdamW, warm-up + cosine,
///    gradient clipping.
/// </summary>
public sealed class Grpo : IAlgorithm
{
    public string Name => "grpo";
    public int GroupSize => _o.GroupSize;

    private readonly PolicyModel _policy;
    private readonly GrpoOptions _o;
    private readonly int _padId, _maxNewTokens;
    private readonly long _seed;
    private readonly AdamW _opt;
    private int _step;

    public Grpo(PolicyModel policy, GrpoOptions options, int padId, int maxNewTokens, long seed)
    {
        options.Validate();
        _policy = policy;
        _o = options;
        _padId = padId;
        _maxNewTokens = maxNewTokens;
        _seed = seed;
        _opt = _o.Actor.CreateOptimizer(policy.Model.parameters());
    }

    public UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations)
    {
        var episodes = rollout.Episodes;
        var device = _policy.Model.Device;
        var (oldLogProbs, entropy) = RolloutScoring.Score(_policy, episodes, _padId);

        // KL as reward shapes the task rewards; as a loss it leaves them alone (β = 0 here) and enters in step 4.
        var shaping = KlShaping.Shape(episodes, oldLogProbs, _o.Kl == GrpoKl.Reward ? klCoef : 0);
        var advantages = new float[episodes.Count][];
        var groups = Groups(episodes);
        foreach (var group in groups)
        {
            var groupAdvantages = _o.Variant == GrpoVariant.Outcome
                ? OutcomeAdvantages(group.Select(b => episodes[b].TaskRewards.Take(episodes[b].Response.Length).Sum(v => (double)v)).ToList(),
                    group.Select(b => episodes[b].Response.Length).ToList(), _o.ScaleByStd, _o.StdEpsilon)
                : ProcessAdvantages(group.Select(b => Steps(episodes[b])).ToList(), _o.ScaleByStd, _o.StdEpsilon);
            for (int i = 0; i < group.Length; i++) advantages[group[i]] = groupAdvantages[i];
        }
        double zeroGroups = groups.Count(g => g.All(b => advantages[b].All(a => a == 0))) / (double)groups.Length;
        if (_o.Kl == GrpoKl.Reward) AddKlToGo(advantages, episodes, oldLogProbs, klCoef);

        int miniBatches = (episodes.Count + _o.MiniBatchSize - 1) / _o.MiniBatchSize;
        var rng = new SeededRandom(_seed * 1_000_003 + iteration);
        double loss = 0, clipFraction = 0, approxKl = 0, k3 = 0;
        int updates = 0;
        _policy.Model.train();
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            var order = Enumerable.Range(0, episodes.Count).ToArray();
            rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += _o.MiniBatchSize, _step++, updates++)
            {
                var idx = order.Skip(start).Take(_o.MiniBatchSize).ToArray();
                using var scope = NewDisposeScope();
                using var mb = new SequenceTensors(idx.Select(i => episodes[i]).ToList(), _padId, device);
                var adv = mb.Place(k => advantages[idx[k]]);
                var old = mb.Place(k => oldLogProbs[idx[k]]);
                var logProbs = _policy.NextTokenLogProbs(mb.Batch);
                var logRatio = logProbs - old;
                var ratio = logRatio.exp();
                var perToken = -minimum(ratio * adv, ratio.clamp(1 - _o.Clip, 1 + _o.Clip) * adv);
                Tensor? klTerm = null;
                if (_o.Kl == GrpoKl.Loss)
                {
                    klTerm = K3(logProbs, mb.Place(k => episodes[idx[k]].RefLogProbs), mb.Mask);
                    perToken = perToken + klCoef * klTerm;
                }
                _o.Actor.ScheduleLearningRate(_opt, _step, totalIterations * miniBatches * _o.Epochs);
                _opt.zero_grad();
                var l = Aggregate(perToken, mb.Mask, _o.LossAggregation, _maxNewTokens);
                l.backward();
                nn.utils.clip_grad_norm_(_policy.Model.parameters(), _o.Actor.GradClip);
                _opt.step();
                using (no_grad())
                {
                    double tokens = mb.Mask.sum().item<float>();
                    loss += l.item<float>();
                    clipFraction += ((ratio - 1).abs().gt(_o.Clip).to_type(ScalarType.Float32) * mb.Mask).sum().item<float>() / tokens;
                    approxKl += (((ratio - 1) - logRatio) * mb.Mask).sum().item<float>() / tokens;
                    if (klTerm is not null) k3 += (klTerm * mb.Mask).sum().item<float>() / tokens;
                }
            }
        }
        _policy.Model.eval();
        var figures = new Dictionary<string, double>
        {
            [UpdateStats.PolicyLoss] = loss / updates,
            [UpdateStats.PolicyEntropy] = entropy,
            [UpdateStats.ApproxKl] = approxKl / updates,
            [UpdateStats.ClipFraction] = clipFraction / updates,
            [UpdateStats.Kl] = shaping.Kl,
            [UpdateStats.ShapedReward] = shaping.Rewards.Average(r => r.Sum()),
            // Groups whose task rewards gave no signal at all (every response scored alike): GRPO learns nothing from them.
            ["zero_advantage_groups"] = zeroGroups,
        };
        if (_o.Kl == GrpoKl.Loss) figures["k3_kl"] = k3 / updates;
        return new UpdateStats(figures);
    }

    /// <summary>The rollout's groups: sub-envs sharing a prompt (<see cref="EpisodeSample.Group"/>), each exactly G long.</summary>
    private int[][] Groups(IReadOnlyList<EpisodeSample> episodes)
    {
        var groups = Enumerable.Range(0, episodes.Count).GroupBy(b => episodes[b].Group).Select(g => g.ToArray()).ToArray();
        foreach (var g in groups)
            if (g.Length != _o.GroupSize)
                throw new InvalidOperationException($"GRPO group {episodes[g[0]].Group} has {g.Length} responses, expected G = {_o.GroupSize}: reset the env with group_size {_o.GroupSize} and a multiple of it as num_envs");
        return groups;
    }

    /// <summary>
    /// Outcome advantages of one group: A_i = (R_i − mean R) / (std R + ε), or R_i − mean R without the std, the same
    /// for each of response i's tokens. std is the sample standard deviation (n − 1), as TRL's GRPO computes it.
    /// </summary>
    public static float[][] OutcomeAdvantages(IReadOnlyList<double> scores, IReadOnlyList<int> lengths, bool scaleByStd, double epsilon)
    {
        if (scores.Count < 2) throw new ArgumentException($"a GRPO group needs at least 2 responses, got {scores.Count}", nameof(scores));
        if (lengths.Count != scores.Count) throw new ArgumentException($"{scores.Count} scores but {lengths.Count} lengths", nameof(lengths));
        var (mean, std) = MeanStd(scores);
        return scores.Select((r, i) =>
        {
            var a = (float)(scaleByStd ? (r - mean) / (std + epsilon) : r - mean);
            return Enumerable.Repeat(a, lengths[i]).ToArray();
        }).ToArray();
    }

    /// <summary>One response's reward steps: the last token index of each step and the step's reward.</summary>
    public sealed record StepRewards(int Length, int[] Ends, double[] Rewards);

    /// <summary>
    /// Process advantages of one group: every step reward normalized with the mean and std of all the group's step
    /// rewards, then A_t = Σ over steps j whose end ≥ t of r̃_j. Tokens after a response's last step (its EOS) take the
    /// last step's term, so the choice to stop is credited like the step it closes. A response without steps gets 0.
    /// </summary>
    public static float[][] ProcessAdvantages(IReadOnlyList<StepRewards> group, bool scaleByStd, double epsilon)
    {
        if (group.Count < 2) throw new ArgumentException($"a GRPO group needs at least 2 responses, got {group.Count}", nameof(group));
        var all = group.SelectMany(s => s.Rewards).ToList();
        var (mean, std) = all.Count >= 2 ? MeanStd(all) : (all.Count == 1 ? all[0] : 0, 0);
        return group.Select(s =>
        {
            var a = new float[s.Length];
            if (s.Ends.Length == 0) return a;
            double toGo = 0;
            int j = s.Ends.Length - 1;
            for (int t = s.Length - 1; t >= 0; t--)
            {
                while (j >= 0 && s.Ends[j] >= Math.Min(t, s.Ends[^1]))
                {
                    toGo += scaleByStd ? (s.Rewards[j] - mean) / (std + epsilon) : s.Rewards[j] - mean;
                    j--;
                }
                a[t] = (float)toGo;
            }
            return a;
        }).ToArray();
    }

    /// <summary>
    /// An episode's reward steps: its segments (each paid the sum of the task rewards on its tokens, so clipping and
    /// interpolation are what the env paid; tokens after the last segment, the EOS with any missing-EOS penalty or a
    /// bandit payout, are added to the last step). Without segments the whole response is one step.
    /// </summary>
    public static StepRewards Steps(EpisodeSample e)
    {
        int n = e.Response.Length;
        var ends = e.StepEnds.Where(end => end < n).ToArray();
        if (ends.Length == 0) ends = n == 0 ? [] : [n - 1];
        var rewards = new double[ends.Length];
        int j = 0;
        for (int t = 0; t < n; t++)
        {
            while (j < ends.Length - 1 && t > ends[j]) j++;
            rewards[j] += e.TaskRewards[t];
        }
        return new StepRewards(n, ends, rewards);
    }

    /// <summary>k3 = exp(log π_ref − log π) − (log π_ref − log π) − 1 per token: ≥ 0, unbiased for KL(π ‖ π_ref); 0
    /// outside the response mask.</summary>
    /// <remarks>The difference is zeroed outside the mask before the exp: there log π_ref is a placeholder 0, so exp(−log π)
    /// of a padding token the policy finds unlikely overflows to inf, and a later multiply by the mask would give
    /// inf · 0 = NaN in the loss and its gradient.</remarks>
    public static Tensor K3(Tensor logProbs, Tensor refLogProbs, Tensor mask)
    {
        var d = (refLogProbs - logProbs).masked_fill(mask.eq(0), 0);
        return d.exp() - d - 1;
    }

    /// <summary>The minibatch loss from per-token losses (B, T) and the response mask: GRPO's per-response mean then
    /// mean over responses, or Dr. GRPO's sum over every token divided by B × max_new_tokens.</summary>
    public static Tensor Aggregate(Tensor perToken, Tensor mask, GrpoLossAggregation aggregation, int maxNewTokens) =>
        aggregation == GrpoLossAggregation.PerSequence
            ? PpoLosses.MaskedMeanPerSequence(perToken, mask).mean()
            : (perToken * mask).sum() / (perToken.shape[0] * (double)maxNewTokens);

    // KL as reward, after normalizing: A_t += −β Σ_{t' ≥ t} (log π_old − log π_ref).
    private static void AddKlToGo(float[][] advantages, IReadOnlyList<EpisodeSample> episodes, float[][] oldLogProbs, double klCoef)
    {
        for (int b = 0; b < episodes.Count; b++)
        {
            double toGo = 0;
            for (int t = advantages[b].Length - 1; t >= 0; t--)
            {
                toGo -= klCoef * (oldLogProbs[b][t] - episodes[b].RefLogProbs[t]);
                advantages[b][t] += (float)toGo;
            }
        }
    }

    private static (double Mean, double Std) MeanStd(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        double variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return (mean, Math.Sqrt(variance));
    }

    public void SaveState(string directory)
    {
        _opt.save_state_dict(Path.Combine(directory, "actor_optimizer.bin"));
        File.WriteAllText(Path.Combine(directory, "grpo.json"), $"{{\"step\":{_step}}}");
    }

    public void LoadState(string directory)
    {
        AlgorithmState.LoadOptimizer(_opt, Path.Combine(directory, "actor_optimizer.bin"));
        _step = AlgorithmState.Read(Path.Combine(directory, "grpo.json")).Step;
    }

    public void Dispose() => _opt.Dispose();
}
