namespace RlhfGym.Env.Judging;

/// <summary>Two models' responses to the same prompts, side by side under a judge.</summary>
public sealed record JudgedComparison(
    int Responses,
    double MeanGold,
    double WinRateVsReference,
    double LcWinRateVsReference,
    double MeanLength,
    double EosRate,
    double RepetitionRate,
    double ReferenceMeanGold)
{
    /// <summary>
    /// Compares a policy's responses with a reference's (the SFT model) prompt by prompt: judge score, win rate (ties
    /// ½), and a length-controlled win rate in the spirit of AlpacaEval-2 LC: a logistic regression of the win on the
    /// length difference, read at zero difference.
    /// </summary>
    public static JudgedComparison Compare(IEpisodeJudge judge, IReadOnlyList<string> promptIds, IReadOnlyList<int[]> policy, IReadOnlyList<int[]> reference)
    {
        if (promptIds.Count == 0 || promptIds.Count != policy.Count || promptIds.Count != reference.Count)
            throw new ArgumentException($"need one policy and one reference response per prompt (got {promptIds.Count}, {policy.Count}, {reference.Count})");
        int n = promptIds.Count;
        var wins = new double[n];
        var lengthDiff = new double[n];
        double gold = 0, refGold = 0, length = 0, eos = 0, repeats = 0, units = 0;
        for (int i = 0; i < n; i++)
        {
            var a = judge.Judge(promptIds[i], policy[i]);
            var b = judge.Judge(promptIds[i], reference[i]);
            gold += a.Score;
            refGold += b.Score;
            wins[i] = a.Score > b.Score ? 1 : a.Score < b.Score ? 0 : 0.5;
            lengthDiff[i] = a.Length - b.Length;
            length += a.Length;
            eos += a.Terminated ? 1 : 0;
            repeats += a.RepeatedUnits;
            units += a.Units;
        }
        return new JudgedComparison(n, gold / n, wins.Average(), LengthControlledWinRate(wins, lengthDiff), length / n, eos / n,
            units > 0 ? repeats / units : 0, refGold / n);
    }

    /// <summary>
    /// Fit P(win) = σ(a + b·Δ) by Newton's method (fractional targets allowed, a tiny ridge on b for separable data),
    /// with Δ the length difference scaled by its standard deviation; returns σ(a), the win rate at equal length.
    /// </summary>
    public static double LengthControlledWinRate(IReadOnlyList<double> wins, IReadOnlyList<double> lengthDiff)
    {
        int n = wins.Count;
        double mean = lengthDiff.Average();
        double sd = Math.Sqrt(lengthDiff.Sum(d => (d - mean) * (d - mean)) / n);
        var x = lengthDiff.Select(d => sd > 0 ? d / sd : 0.0).ToArray();
        double a = 0, b = 0;
        const double ridge = 1e-3;
        for (int iter = 0; iter < 100; iter++)
        {
            double ga = 0, gb = -ridge * b, haa = 1e-9, hab = 0, hbb = ridge;
            for (int i = 0; i < n; i++)
            {
                double p = 1 / (1 + Math.Exp(-(a + b * x[i])));
                double r = wins[i] - p, w = p * (1 - p);
                ga += r;
                gb += r * x[i];
                haa += w;
                hab += w * x[i];
                hbb += w * x[i] * x[i];
            }
            double det = haa * hbb - hab * hab;
            if (Math.Abs(det) < 1e-12) break;
            double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
            a += Math.Clamp(da, -5, 5);
            b += Math.Clamp(db, -5, 5);
            if (Math.Abs(da) + Math.Abs(db) < 1e-10) break;
        }
        return 1 / (1 + Math.Exp(-a));
    }
}
