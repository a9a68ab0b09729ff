namespace RlhfGym.Env.Judging;

/// <summary>Two models' responses to the same prompts, side by side under a judge.</summary>
public sealed record JudgedComparison(
    int Responses,
    double MeanGold,
    double WinRateVsReference,
    LengthControlledWinRate LengthControlled,
    double MeanLength,
    double EosRate,
    double RepetitionRate,
    double ReferenceMeanGold)
{
    /// <summary>The length-controlled win rate, or null when its GLM failed (<see cref="LengthControlledWinRate"/>).</summary>
    public double? LcWinRateVsReference => LengthControlled.Value;

    /// <summary>
    /// Compares a policy's responses with a reference's (the SFT model) prompt by prompt: judge score, win rate (ties
    /// ½), and AlpacaEval 2's length-controlled win rate (<see cref="LengthControlledWinRate"/>).
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
        return new JudgedComparison(n, gold / n, wins.Average(), LengthControlledWinRate.Fit(wins, lengthDiff), length / n, eos / n,
            units > 0 ? repeats / units : 0, refGold / n);
    }
}
