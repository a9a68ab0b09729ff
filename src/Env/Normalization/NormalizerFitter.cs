using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Normalization;

/// <summary>What a fit saw and did, for reports.</summary>
public sealed record NormalizerFitReport(
    RewardNormalizer Normalizer,
    int Responses,
    int Segments,
    int Buckets,
    double GlobalMean,
    double GlobalStd,
    /// <summary>Share of the fit's own segments whose σ(p) was raised to the floor.</summary>
    double ClampedFraction,
    /// <summary>Below this p the σ line is clamped (0 when it never is).</summary>
    double ClampedBelowP);

/// <summary>
/// Fits a <see cref="RewardNormalizer"/> from raw segment rewards, one list per response (method.md §3): bucket every
/// reward by p = k/K rounded to 3 decimals, take each bucket's mean and population std (ddof 0), and regress each on
/// ln(p + 1e-10), one point per bucket, unweighted, with the HuberRegressor objective (ε 1.35, α 1e-4).
/// </summary>
public static class NormalizerFitter
{
    /// <summary>σ floor: this fraction of the global std of all segment rewards.</summary>
    public const double SigmaFloorFraction = 0.1;

    public static NormalizerFitReport Fit(NormalizerKind kind, IReadOnlyList<IReadOnlyList<double>> rewardsPerResponse)
    {
        if (rewardsPerResponse.Count == 0) throw new ArgumentException("no responses to fit a normalizer on");
        for (int i = 0; i < rewardsPerResponse.Count; i++)
        {
            if (rewardsPerResponse[i].Count == 0) throw new ArgumentException($"response {i} has an empty list of segment rewards");
            for (int k = 0; k < rewardsPerResponse[i].Count; k++)
                if (!double.IsFinite(rewardsPerResponse[i][k])) throw new ArgumentException($"response {i}, segment {k + 1}: reward {rewardsPerResponse[i][k]} is not finite");
        }
        var all = rewardsPerResponse.SelectMany(r => r).ToList();
        var (globalMean, globalStd) = MeanStd(all);
        double floor = Math.Max(1e-6, SigmaFloorFraction * globalStd);
        int buckets = 0;
        RewardNormalizer normalizer;
        switch (kind)
        {
            case NormalizerKind.None:
                // μ 0, σ 1 exactly (method.md §3): a floor from the data could exceed 1 and rescale "none".
                normalizer = RewardNormalizer.Identity;
                break;
            case NormalizerKind.Global:
                normalizer = Constant(kind, globalMean, globalStd, floor);
                break;
            case NormalizerKind.Last:
                var (lastMean, lastStd) = MeanStd(rewardsPerResponse.Select(r => r[^1]).ToList());
                normalizer = Constant(kind, lastMean, lastStd, floor);
                break;
            default:
                var byBucket = new SortedDictionary<double, List<double>>();
                foreach (var rewards in rewardsPerResponse)
                    for (int k = 1; k <= rewards.Count; k++)
                    {
                        double p = Math.Round(k / (double)rewards.Count, 3, MidpointRounding.ToEven);
                        if (!byBucket.TryGetValue(p, out var list)) byBucket[p] = list = [];
                        list.Add(rewards[k - 1]);
                    }
                buckets = byBucket.Count;
                if (buckets < 2)
                    throw new ArgumentException($"location normalizer needs segments at 2 or more locations p = k/K; all {all.Count} rewards sit at p = {byBucket.Keys.First()} (nothing to regress)");
                var x = byBucket.Keys.Select(p => Math.Log(p + 1e-10)).ToList();
                var stats = byBucket.Values.Select(MeanStd).ToList();
                var mean = HuberRegression.Solve(x, stats.Select(s => s.Mean).ToList());
                var std = HuberRegression.Solve(x, stats.Select(s => s.Std).ToList());
                normalizer = new RewardNormalizer
                {
                    Kind = NormalizerKind.Location,
                    Mean = new LogLine(mean.Slope, mean.Intercept),
                    Std = new LogLine(std.Slope, std.Intercept),
                    SigmaFloor = floor,
                };
                break;
        }
        int clamped = 0;
        foreach (var rewards in rewardsPerResponse)
            for (int k = 1; k <= rewards.Count; k++)
            {
                double p = k / (double)rewards.Count;
                double raw = kind == NormalizerKind.Location ? normalizer.Std.At(p) : normalizer.Std.Intercept;
                if (raw < floor) clamped++;
            }
        return new NormalizerFitReport(normalizer, rewardsPerResponse.Count, all.Count, buckets, globalMean, globalStd,
            clamped / (double)all.Count, ClampedBelow(normalizer));
    }

    /// <summary>Every kind from the same raw segment rewards, for a bundle. Bandit reads one reward per response (p = 1
    /// always), so its location normalizer is the scalar μ0, σ0 (a global fit).</summary>
    public static Dictionary<NormalizerKind, NormalizerFitReport> FitAll(RewardMode mode, IReadOnlyList<IReadOnlyList<double>> rewardsPerResponse) =>
        Enum.GetValues<NormalizerKind>().ToDictionary(kind => kind,
            kind => Fit(mode == RewardMode.Bandit && kind == NormalizerKind.Location ? NormalizerKind.Global : kind, rewardsPerResponse));

    private static RewardNormalizer Constant(NormalizerKind kind, double mean, double std, double floor) =>
        new() { Kind = kind, Mean = new LogLine(0, mean), Std = new LogLine(0, std), SigmaFloor = floor };

    // For σ(p) = a ln p + b with a > 0, σ < floor exactly when p < exp((floor − b)/a).
    private static double ClampedBelow(RewardNormalizer n)
    {
        if (n.Kind != NormalizerKind.Location) return n.Std.Intercept < n.SigmaFloor ? 1 : 0;
        if (n.Std.Slope > 0) return Math.Min(1, Math.Exp((n.SigmaFloor - n.Std.Intercept) / n.Std.Slope));
        return n.Std.At(1) < n.SigmaFloor ? 1 : 0;
    }

    /// <summary>Mean and population standard deviation (ddof 0).</summary>
    public static (double Mean, double Std) MeanStd(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        return (mean, Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / values.Count));
    }
}
