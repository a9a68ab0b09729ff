using RlhfGym.Env.Segmentation;

namespace RlhfGym.Env.Core;

/// <summary>
/// Everything the env computed for one finished response. Indices are response positions (0-based); the response
/// includes its EOS when it has one.
/// </summary>
public sealed record EpisodeRewards(
    int[] Response,
    /// <summary>Task reward per response token (Episode delivery): normalized segment rewards spread per the
    /// interpolation, clipped to ±10; EOS gets 0 in dense modes; bandit pays at the EOS.</summary>
    float[] PerToken,
    /// <summary>Task reward per step under Online delivery (what step j emitted).</summary>
    float[] Online,
    IReadOnlyList<Segment> Segments,
    double[] RawSegmentRewards,
    double[] NormalizedSegmentRewards,
    /// <summary>Reference LM next-token entropy after each token.</summary>
    float[] Entropies,
    /// <summary>log π_ref of each response token given everything before it.</summary>
    float[] RefLogProbs,
    bool Terminated,
    bool Truncated)
{
    public double Total => PerToken.Sum(v => (double)v);

    /// <summary>The env judge's score when the env has one (evaluation only, never part of the reward).</summary>
    public double? Gold { get; init; }
}
