using RlhfGym.Transport.Wire;

namespace RlhfGym.Benchmarks;

/// <summary>
/// A server's time per step of a timed round, in milliseconds, from its `health` totals read before and after the round:
/// gathering bursts (the batching window), computing replies, handing them to the socket, and waiting for requests (the
/// round's wall time less the other three: the clients' turnaround and both ends' transport). Bursts: how many it
/// answered per step (1 when every step is one full burst). The `health` request read before a round is counted in it
/// (its burst is left out of Bursts; its microseconds of compute and reply are not).
/// </summary>
public sealed record ServerPhases(double WaitingMs, double GatherMs, double ComputeMs, double ReplyMs, double BurstsPerStep)
{
    public static ServerPhases Over(IReadOnlyList<(double Seconds, HealthMessage Before, HealthMessage After)> rounds, int steps)
    {
        double n = (double)rounds.Count * steps;
        double Sum(Func<HealthMessage, double> total) => rounds.Sum(r => total(r.After) - total(r.Before));
        double gather = Sum(h => h.GatherSeconds), compute = Sum(h => h.ComputeSeconds), reply = Sum(h => h.ReplySeconds);
        double wall = rounds.Sum(r => r.Seconds);
        return new ServerPhases(1000 * (wall - gather - compute - reply) / n, 1000 * gather / n, 1000 * compute / n, 1000 * reply / n,
            (Sum(h => h.Bursts) - rounds.Count) / n);
    }
}
