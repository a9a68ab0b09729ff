using System.Diagnostics;

namespace RlhfGym.Transport.Server;

/// <summary>
/// The server's load for `health`: requests answered, uptime, and the fraction of the last 10 s spent handling
/// requests. Ten one-second buckets, so recording a request allocates nothing and costs O(1).
/// </summary>
internal sealed class ServerLoad
{
    private const int Window = 10;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly long[] _bucketSecond = new long[Window];
    private readonly double[] _bucketBusy = new double[Window];

    public long Requests { get; private set; }

    /// <summary>Bursts answered, and the seconds they spent in each phase, summed (health's bursts, gather_s, …).</summary>
    public long Bursts { get; private set; }
    public double GatherSeconds { get; private set; }
    public double ComputeSeconds { get; private set; }
    public double ReplySeconds { get; private set; }

    /// <summary>A burst was answered: its first request came at <paramref name="firstRequest"/>, it closed at
    /// <paramref name="closed"/>, its replies were computed by <paramref name="computed"/> and sent by
    /// <paramref name="sent"/> (Stopwatch ticks).</summary>
    public void RecordBurst(long firstRequest, long closed, long computed, long sent)
    {
        Bursts++;
        GatherSeconds += Stopwatch.GetElapsedTime(firstRequest, closed).TotalSeconds;
        ComputeSeconds += Stopwatch.GetElapsedTime(closed, computed).TotalSeconds;
        ReplySeconds += Stopwatch.GetElapsedTime(computed, sent).TotalSeconds;
    }

    public double UptimeSeconds => Stopwatch.GetElapsedTime(_started).TotalSeconds;

    /// <summary>A request that began at <paramref name="startTimestamp"/> (Stopwatch ticks) has just been answered.</summary>
    public void Record(long startTimestamp)
    {
        Requests++;
        RecordBusy(startTimestamp);
    }

    /// <summary>Work that began at <paramref name="startTimestamp"/> and served requests counted on their own (a batched step).</summary>
    public void RecordBusy(long startTimestamp)
    {
        long now = Stopwatch.GetTimestamp();
        // Charged to the second it ended in: a request longer than a second counts in one bucket, which can lift that
        // second above 1; BusyFraction clamps the window's total.
        long second = (long)Stopwatch.GetElapsedTime(_started, now).TotalSeconds;
        int slot = (int)(second % Window);
        if (_bucketSecond[slot] != second)
        {
            _bucketSecond[slot] = second;
            _bucketBusy[slot] = 0;
        }
        _bucketBusy[slot] += Stopwatch.GetElapsedTime(startTimestamp, now).TotalSeconds;
    }

    /// <summary>Busy seconds in the last 10 whole seconds and the current one, over that span; 0..1.</summary>
    public double BusyFraction()
    {
        double elapsed = UptimeSeconds;
        long current = (long)elapsed;
        double busy = 0;
        for (int i = 0; i < Window; i++)
            if (current - _bucketSecond[i] < Window && _bucketBusy[i] > 0) busy += _bucketBusy[i];
        double span = Math.Min(elapsed, Window);
        return span <= 0 ? 0 : Math.Clamp(busy / span, 0, 1);
    }
}
