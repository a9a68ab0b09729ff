namespace RlhfGym.Env.PhraseWorld;

/// <summary>Held-out evaluation against the gold judge.</summary>
public sealed record WorldEvaluation(
    int Responses,
    double MeanGold,
    double WinRateVsReference,
    double LcWinRateVsReference,
    double MeanLength,
    double EosRate,
    double RepetitionRate,
    double ReferenceMeanGold);

/// <summary>
/// Compares a policy's responses with a reference's (the SFT model) prompt by prompt: gold score, win rate (ties ½),
/// and a length-controlled win rate in the spirit of AlpacaEval-2 LC: a logistic regression of the win on the
/// length difference, read at zero difference.
/// </summary>
public static class WorldEvaluator
{
    public static WorldEvaluation Evaluate(World world, IReadOnlyList<WorldPrompt> prompts, IReadOnlyList<int[]> policy, IReadOnlyList<int[]> reference)
    {
        if (prompts.Count == 0 || prompts.Count != policy.Count || prompts.Count != reference.Count)
            throw new ArgumentException($"need one policy and one reference response per prompt (got {prompts.Count}, {policy.Count}, {reference.Count})");
        var judge = new GoldJudge(world);
        int n = prompts.Count;
        var wins = new double[n];
        var lengthDiff = new double[n];
        double gold = 0, refGold = 0, length = 0, eos = 0, repeats = 0, phrases = 0;
        for (int i = 0; i < n; i++)
        {
            var a = judge.Judge(prompts[i], policy[i]);
            var b = judge.Judge(prompts[i], reference[i]);
            gold += a.Score;
            refGold += b.Score;
            wins[i] = a.Score > b.Score ? 1 : a.Score < b.Score ? 0 : 0.5;
            lengthDiff[i] = a.Length - b.Length;
            length += a.Length;
            eos += a.Terminated ? 1 : 0;
            repeats += a.Repeats;
            phrases += a.Spans.Count(s => s.PhraseId >= 0);
        }
        return new WorldEvaluation(n, gold / n, wins.Average(), LengthControlledWinRate(wins, lengthDiff), length / n, eos / n,
            phrases > 0 ? repeats / phrases : 0, refGold / n);
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
