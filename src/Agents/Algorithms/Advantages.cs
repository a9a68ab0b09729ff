namespace RlhfGym.Agents.Algorithms;

/// <summary>Returns and advantages for one episode's per-token rewards (method.md §4).</summary>
public static class Advantages
{
    /// <summary>
    /// Generalised advantage estimation over one episode: δ_t = r_t + γ V_{t+1} − V_t with V after the last action
    /// = 0; A_t = δ_t + γλ A_{t+1}; returns G_t = A_t + V_t.
    /// </summary>
    public static (float[] Advantages, float[] Returns) Gae(ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, double gamma, double lambda)
    {
        if (rewards.Length != values.Length) throw new ArgumentException($"{rewards.Length} rewards but {values.Length} values");
        int t = rewards.Length;
        var advantages = new float[t];
        var returns = new float[t];
        double next = 0, nextValue = 0;
        for (int i = t - 1; i >= 0; i--)
        {
            double delta = rewards[i] + gamma * nextValue - values[i];
            next = delta + gamma * lambda * next;
            advantages[i] = (float)next;
            returns[i] = (float)(next + values[i]);
            nextValue = values[i];
        }
        return (advantages, returns);
    }

    /// <summary>Whiten in place over every token of every episode (one mean and std for the whole rollout).</summary>
    public static void Whiten(IReadOnlyList<float[]> perEpisode, bool shiftMean = true)
    {
        long n = 0;
        double sum = 0, sumSq = 0;
        foreach (var a in perEpisode)
            foreach (var v in a) { sum += v; sumSq += (double)v * v; n++; }
        if (n == 0) return;
        double mean = sum / n, std = Math.Sqrt(Math.Max(sumSq / n - mean * mean, 0));
        foreach (var a in perEpisode)
            for (int i = 0; i < a.Length; i++)
                a[i] = (float)(((shiftMean ? a[i] - mean : a[i])) / (std + 1e-8));
    }

    /// <summary>
    /// RLOO baseline: for k samples of one prompt with returns R_1..R_k, sample i's baseline is the mean of the other
    /// k − 1 returns.
    /// </summary>
    public static double[] LeaveOneOutBaselines(IReadOnlyList<double> groupReturns)
    {
        int k = groupReturns.Count;
        if (k < 2) throw new ArgumentException("RLOO needs at least 2 samples per prompt");
        double total = groupReturns.Sum();
        return groupReturns.Select(r => (total - r) / (k - 1)).ToArray();
    }
}
