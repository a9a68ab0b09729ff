using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Options;
using RlhfGym.Env.Segmentation;

namespace RlhfGym.Transport.Wire;

/// <summary>Between the env's types and the wire's.</summary>
public static class Conversions
{
    public static SpecMessage ToMessage(EnvSpec s) => new()
    {
        Id = s.Id,
        NumEnvs = s.NumEnvs,
        VocabSize = s.VocabSize,
        EosIds = s.EosIds.ToArray(),
        PadId = s.PadId,
        MaxNewTokens = s.MaxNewTokens,
        Autoreset = s.Autoreset == AutoresetMode.NextStep ? "next-step" : "disabled",
        MaxSeqLen = s.MaxSequenceLength,
        Options = EnvOptionsCodec.Encode(s.Options),
    };

    public static EnvSpec FromMessage(SpecMessage m)
    {
        var options = EnvOptionsCodec.Decode(m.Options, new EnvOptions());
        return new(m.Id, m.NumEnvs, m.VocabSize, m.EosIds, m.PadId, m.MaxNewTokens, ParseAutoreset(m.Autoreset), options) { MaxSequenceLength = m.MaxSeqLen };
    }

    public static AutoresetMode ParseAutoreset(string? value) => value switch
    {
        null or "" or "next-step" => AutoresetMode.NextStep,
        "disabled" => AutoresetMode.Disabled,
        _ => throw new ArgumentException($"autoreset must be next-step or disabled, got '{value}'"),
    };

    public static EpisodeMessage ToMessage(EpisodeRewards e) => new()
    {
        Response = e.Response,
        PerToken = e.PerToken,
        Online = e.Online,
        Segments = e.Segments.Select(s => new[] { s.Start, s.End }).ToArray(),
        Raw = e.RawSegmentRewards,
        Normalized = e.NormalizedSegmentRewards,
        Entropies = e.Entropies,
        RefLogProbs = e.RefLogProbs,
        Terminated = e.Terminated,
        Truncated = e.Truncated,
        Gold = e.Gold,
    };

    public static EpisodeRewards FromMessage(EpisodeMessage m) =>
        new(m.Response, m.PerToken, m.Online, m.Segments.Select(s => new Segment(s[0], s[1])).ToList(), m.Raw, m.Normalized,
            m.Entropies, m.RefLogProbs, m.Terminated, m.Truncated)
        { Gold = m.Gold };

    /// <summary>Token ids from the wire's 64-bit integers; one that does not fit 32 bits is an ArgumentOutOfRangeException
    /// (invalid_argument) naming where it is, e.g. actions[3]. The env checks the vocabulary range.</summary>
    public static int[] TokenIds(long[] values, string field)
    {
        var ids = new int[values.Length];
        TokenIds(values, field, ids);
        return ids;
    }

    /// <summary>The same into a caller's buffer of the same length (a session's reused action buffer).</summary>
    public static void TokenIds(ReadOnlySpan<long> values, string field, Span<int> ids)
    {
        for (int i = 0; i < values.Length; i++)
        {
            long v = values[i];
            if (v < int.MinValue || v > int.MaxValue)
                throw new ArgumentOutOfRangeException(field, $"{field}[{i}] = {v} is not a token id (ids are 0..vocab_size-1)");
            ids[i] = (int)v;
        }
    }

    public static int[][] TokenIds(long[][] rows, string field) => rows.Select((row, i) => TokenIds(row ?? [], $"{field}[{i}]")).ToArray();

    public static long[] WireIds(ReadOnlySpan<int> ids)
    {
        var wire = new long[ids.Length];
        WireIds(ids, wire);
        return wire;
    }

    public static void WireIds(ReadOnlySpan<int> ids, Span<long> wire)
    {
        for (int i = 0; i < ids.Length; i++) wire[i] = ids[i];
    }

    public static long[][] WireIds(IReadOnlyList<int[]> rows) => rows.Select(r => WireIds(r)).ToArray();

    /// <summary>A step's results as a reply (copies the env's reused arrays).</summary>
    public static void Fill(Reply r, StepResult s)
    {
        r.Rewards = (float[])s.Rewards.Clone();
        r.Terminated = (bool[])s.Terminated.Clone();
        r.Truncated = (bool[])s.Truncated.Clone();
        r.RefLogProb = (float[])s.RefLogProb.Clone();
        r.RefEntropy = (float[])s.RefEntropy.Clone();
        r.SegmentEnded = (bool[])s.SegmentEnded.Clone();
        r.RawRead = (float[])s.RawRead.Clone();
        r.ResetPrompts = (int[]?[])s.ResetPrompts.Clone();
        r.ResetPromptIds = (string?[])s.ResetPromptIds.Clone();
        r.Episodes = s.Episodes.Select(e => e is null ? null : ToMessage(e)).ToArray();
    }
}
