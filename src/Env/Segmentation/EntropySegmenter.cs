namespace RlhfGym.Env.Segmentation;

/// <summary>A segment of response tokens [Start, End] (0-based, inclusive).</summary>
public readonly record struct Segment(int Start, int End)
{
    public int Length => End - Start + 1;
}

/// <summary>
/// The paper's cut rule (method.md §1). Response tokens y_0..y_{T-1}; entropy[j] is the reference LM's next-token
/// entropy after y_j (the distribution that predicts y_{j+1}). Token j ends a segment iff entropy[j] &gt; cEnt
/// (strictly). With an EOS at T-1 the EOS belongs to no segment and the last segment always ends at T-2, the last
/// content token. A response that is only EOS has no segments.
/// </summary>
public static class EntropySegmenter
{
    /// <param name="entropies">At least contentLength values; entropy[j] for j &lt; contentLength-1 is read.</param>
    /// <param name="contentLength">Number of content tokens (T-1 when the response ends with EOS).</param>
    /// <param name="cEnt">Threshold; 0 cuts after every token (token mode), +∞ gives one segment (bandit).</param>
    public static List<Segment> Segment(ReadOnlySpan<float> entropies, int contentLength, double cEnt)
    {
        if (contentLength < 0) throw new ArgumentOutOfRangeException(nameof(contentLength), contentLength, "must be >= 0");
        if (double.IsNaN(cEnt) || cEnt < 0) throw new ArgumentOutOfRangeException(nameof(cEnt), cEnt, "c_ent must be >= 0");
        var segments = new List<Segment>();
        int start = 0;
        for (int j = 0; j < contentLength - 1; j++)
        {
            if (entropies[j] > cEnt)
            {
                segments.Add(new Segment(start, j));
                start = j + 1;
            }
        }
        if (contentLength > 0) segments.Add(new Segment(start, contentLength - 1));
        return segments;
    }
}
