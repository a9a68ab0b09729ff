using System.Diagnostics;

namespace RlhfGym.Benchmarks;

/// <summary>Timing helpers for bench verbs: warm up once, then report the median of repeated runs.</summary>
public static class Stopwatches
{
    public static double MedianSeconds(int repeats, Action action, int warmup = 1) => MedianSeconds(repeats, () => Seconds(action), warmup);

    /// <summary>Seconds one run of the action takes.</summary>
    public static double Seconds(Action action)
    {
        long start = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Median of the seconds each run reports for its own timed part (set-up excluded).</summary>
    public static double MedianSeconds(int repeats, Func<double> timedRun, int warmup = 1)
    {
        for (int i = 0; i < warmup; i++) timedRun();
        return Median(Enumerable.Range(0, repeats).Select(_ => timedRun()).ToList());
    }

    /// <summary>The median (upper one for an even count) of measured values.</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
