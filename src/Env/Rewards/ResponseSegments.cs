using RlhfGym.Env.Segmentation;

namespace RlhfGym.Env.Rewards;

/// <summary>
/// How one response is cut and where its reward model is read, in response-token indices (0-based).
/// Dense modes: the segments cover the content tokens (EOS belongs to none) and each is read at its last token.
/// Bandit: one read at the last token (the EOS when the response has one); its single segment is the whole response.
/// A response that is only EOS has no dense segments (its sequence score is 0).
/// </summary>
public sealed record ResponseSegments(IReadOnlyList<Segment> Segments, int ContentLength, bool Terminated)
{
    public int Count => Segments.Count;

    /// <summary>Response index where segment k (0-based) is read.</summary>
    public int ReadPosition(int k) => Segments[k].End;

    /// <param name="response">Response tokens (ending with EOS when terminated).</param>
    /// <param name="entropies">Reference next-token entropies per response position; only read in segment mode.</param>
    public static ResponseSegments Plan(RewardReading reading, ReadOnlySpan<int> response, int eosId, ReadOnlySpan<float> entropies)
    {
        if (response.Length == 0) throw new ArgumentException("a response has at least one token");
        bool terminated = response[^1] == eosId;
        int content = terminated ? response.Length - 1 : response.Length;
        if (reading.Mode == RewardMode.Bandit)
            return new([new Segment(0, response.Length - 1)], content, terminated);
        if (reading.Mode == RewardMode.Token) // c_ent = 0 cuts after every token; no entropies needed
            return new(Enumerable.Range(0, content).Select(j => new Segment(j, j)).ToList(), content, terminated);
        if (entropies.Length < content)
            throw new ArgumentException($"segment mode needs {content} entropies, got {entropies.Length}");
        return new(EntropySegmenter.Segment(entropies, content, reading.CEnt), content, terminated);
    }
}
