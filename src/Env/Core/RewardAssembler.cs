using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;

namespace RlhfGym.Env.Core;

/// <summary>
/// Turns one finished response's per-position numbers (reference entropies and log-probs, reward-model values) into
/// rewards, under every option. The env's steps and the score endpoint both call this, so they cannot disagree on the
/// rule — only on the numbers fed in (incremental vs full forward).
/// <list type="number">
/// <item>Missing EOS: <see cref="MissingEosRule.Overwrite"/> scores the last token as EOS (the caller feeds EOS to the
/// RM there); <see cref="MissingEosRule.Penalty"/> scores the tokens as they are and subtracts the penalty once, on
/// the last token.</item>
/// <item>Plan the segments (method.md §1) and read r_k at each segment's read position.</item>
/// <item>Normalize: r̃_k = (r_k − μ(k/K)) / σ(k/K).</item>
/// <item>Spread: even (r̃_k / L_k on each token), repeat (r̃_k on each token) or none (r̃_k on the last token);
/// bandit pays r̃ at its read position (the EOS). Clip each token to ±10. Dense-as-bandit pays the mean r̃_k once, at
/// the end.</item>
/// <item>Length norm (option): every token's reward divided by the response length T, as the released code does for
/// its token-level RM.</item>
/// <item>Online delivery (an extension beyond the paper): a segment's reward is emitted at the step it becomes
/// known, normalized at location p = (end + 1) / max_new_tokens instead of k/K, which needs the final K.</item>
/// </list>
/// </summary>
public static class RewardAssembler
{
    public const float TokenRewardClip = 10f;

    /// <summary>The token the reward model must see at the last position of a response cut by the budget.</summary>
    public static bool OverwritesLastToken(EnvOptions o, bool endedWithEos) => !endedWithEos && o.MissingEos == MissingEosRule.Overwrite;

    public static EpisodeRewards Assemble(EnvOptions o, RewardNormalizer normalizer, int[] response, float[] entropies,
        float[] refLogProbs, float[] values, int eosId, bool truncated)
    {
        int t = response.Length;
        bool endedWithEos = response[^1] == eosId;
        bool overwrite = OverwritesLastToken(o, endedWithEos);
        int[] planned = response;
        if (overwrite)
        {
            planned = (int[])response.Clone();
            planned[^1] = eosId;
        }
        var plan = ResponseSegments.Plan(o.Reading, planned, eosId, entropies);
        int count = plan.Count;
        var raw = new double[count];
        var normalized = new double[count];
        for (int k = 0; k < count; k++)
        {
            raw[k] = values[plan.ReadPosition(k)];
            normalized[k] = normalizer.Normalize(raw[k], k + 1, count);
        }

        var perToken = new float[t];
        var online = new float[t];
        if (o.DenseAsBandit && o.Reading.Mode != RewardMode.Bandit)
        {
            double mean = count == 0 ? 0 : normalized.Average();
            perToken[t - 1] = Clip(mean);
            online[t - 1] = perToken[t - 1];
        }
        else
        {
            for (int k = 0; k < count; k++)
            {
                var seg = plan.Segments[k];
                if (o.Reading.Mode == RewardMode.Bandit) perToken[plan.ReadPosition(k)] = Clip(normalized[k]);
                else Spread(perToken, seg, normalized[k], o.Interpolation);
                online[OnlineStep(o, plan, k, entropies, t)] += OnlineReward(o, normalizer, raw[k], seg.End);
            }
        }
        if (o.LengthNorm)
        {
            // The released code's length_norm: r_t / T over the RM-derived rewards; the missing-EOS penalty below
            // stays a whole charge per episode.
            for (int j = 0; j < t; j++) perToken[j] /= t;
        }
        if (!endedWithEos && o.MissingEos == MissingEosRule.Penalty)
        {
            perToken[t - 1] -= (float)o.MissingEosPenalty;
            online[t - 1] -= (float)o.MissingEosPenalty;
        }
        return new EpisodeRewards(response, perToken, online, plan.Segments, raw, normalized, entropies, refLogProbs,
            Terminated: endedWithEos, Truncated: truncated);
    }

    // Even: r̃/L on each token; repeat: r̃ on each token; none: r̃ on the last token. Clipped per token.
    private static void Spread(float[] perToken, Segment seg, double reward, Interpolation interpolation)
    {
        switch (interpolation)
        {
            case Interpolation.Even:
                for (int j = seg.Start; j <= seg.End; j++) perToken[j] = Clip(reward / seg.Length);
                break;
            case Interpolation.Repeat:
                for (int j = seg.Start; j <= seg.End; j++) perToken[j] = Clip(reward);
                break;
            default:
                perToken[seg.End] = Clip(reward);
                break;
        }
    }

    /// <summary>Online delivery's reward for a segment read at <paramref name="end"/>: normalized at p = (end + 1) /
    /// max_new_tokens (bandit: p = 1), clipped.</summary>
    public static float OnlineReward(EnvOptions o, RewardNormalizer normalizer, double raw, int end)
    {
        double p = o.Reading.Mode == RewardMode.Bandit ? 1.0 : Math.Min(1.0, (end + 1) / (double)o.MaxNewTokens);
        return Clip(normalizer.NormalizeAt(raw, p));
    }

    /// <summary>Whether a dense reading cuts after content token j by its rule alone (not by the end of the response).</summary>
    public static bool CutByRule(EnvOptions o, float entropy) =>
        o.Reading.Mode == RewardMode.Token || (o.Reading.Mode == RewardMode.Segment && entropy > o.Reading.CEnt);

    /// <summary>Whether the episode's last segment becomes known only at its final step (the end closed it).</summary>
    public static bool LastSegmentClosesAtEnd(EnvOptions o, EpisodeRewards e) =>
        e.Segments.Count > 0 && (o.Reading.Mode == RewardMode.Bandit || o.DenseAsBandit || !CutByRule(o, e.Entropies[e.Segments[^1].End])
            || e.Segments[^1].End == e.Response.Length - 1);

    /// <summary>
    /// The step at which segment k is known: its end, when the rule cut there (token mode, or entropy above c_ent);
    /// otherwise — the last segment, closed by the end of the response — the final step.
    /// </summary>
    public static int OnlineStep(EnvOptions o, ResponseSegments plan, int k, float[] entropies, int length)
    {
        if (o.Reading.Mode == RewardMode.Bandit) return length - 1;
        int end = plan.Segments[k].End;
        return CutByRule(o, entropies[end]) ? end : length - 1;
    }

    private static float Clip(double v) => (float)Math.Clamp(v, -TokenRewardClip, TokenRewardClip);
}
