namespace RlhfGym.PhraseWorld;

/// <summary>One parsed unit of a response: a phrase, or a run of unparseable (gibberish) tokens.</summary>
/// <param name="Start">Index of the first token in the response.</param>
/// <param name="End">Index of the last token (inclusive).</param>
/// <param name="PhraseId">The phrase, or -1 for gibberish.</param>
/// <param name="Value">What this unit added to the score.</param>
public sealed record JudgedSpan(int Start, int End, int PhraseId, double Value);

/// <summary>The gold judge's verdict on one response.</summary>
public sealed record GoldVerdict(
    double Score,
    IReadOnlyList<JudgedSpan> Spans,
    bool Terminated,
    int ContentPhrases,
    int Repeats,
    int GibberishTokens,
    int Length)
{
    /// <summary>Gold segment ends: the last token index of every span (phrase or gibberish run).</summary>
    public IEnumerable<int> BoundaryEnds => Spans.Select(s => s.End);
}

/// <summary>
/// Scores any token sequence against the world's phrase banks. Never throws on odd input: unknown or out-of-range
/// ids are gibberish, an empty response scores as "no EOS", anything after the first EOS is ignored.
/// </summary>
public sealed class GoldJudge
{
    private readonly World _world;
    public GoldJudge(World world) => _world = world;

    public GoldVerdict Judge(WorldPrompt prompt, ReadOnlySpan<int> response)
    {
        var rules = _world.Rules;
        var spans = new List<JudgedSpan>();
        var seen = new HashSet<int>();
        int eos = _world.EosId, i = 0, content = 0, repeats = 0, gibberish = 0, gibberishStart = -1;
        bool terminated = false;
        double score = 0;
        void CloseGibberish(int endExclusive)
        {
            if (gibberishStart < 0) return;
            int n = endExclusive - gibberishStart;
            spans.Add(new JudgedSpan(gibberishStart, endExclusive - 1, -1, -rules.GibberishPenalty * n));
            score -= rules.GibberishPenalty * n;
            gibberish += n;
            gibberishStart = -1;
        }
        while (i < response.Length)
        {
            if (response[i] == eos) { terminated = true; break; }
            var phrase = _world.PhraseStartingWith(response[i]);
            if (phrase is null || !Matches(response, i, phrase.Tokens))
            {
                if (gibberishStart < 0) gibberishStart = i;
                i++;
                continue;
            }
            CloseGibberish(i);
            int end = i + phrase.Tokens.Length - 1;
            double value;
            if (phrase.Kind == PhraseKind.Closing)
            {
                bool last = end + 1 < response.Length && response[end + 1] == eos;
                value = last ? rules.ClosingBonus : rules.MisplacedClosingValue;
            }
            else
            {
                bool repeat = !seen.Add(phrase.Id);
                if (repeat) repeats++;
                value = repeat ? rules.RepeatValue
                    : phrase.Topic != prompt.Topic && phrase.Kind != PhraseKind.Filler ? rules.OffTopicValue
                    : phrase.Value;
                int beyond = content - prompt.Ideal + 1; // > 0 once past the ideal count
                if (beyond > 0)
                {
                    if (value > 0) value *= Math.Pow(rules.Decay, beyond);
                    value -= rules.OverLengthPenalty;
                }
                content++;
            }
            spans.Add(new JudgedSpan(i, end, phrase.Id, value));
            score += value;
            i = end + 1;
        }
        CloseGibberish(i);
        if (!terminated) score -= rules.MissingEosPenalty;
        return new GoldVerdict(score, spans, terminated, content, repeats, gibberish, i);
    }

    private static bool Matches(ReadOnlySpan<int> response, int start, int[] phrase)
    {
        if (start + phrase.Length > response.Length) return false;
        for (int k = 0; k < phrase.Length; k++)
            if (response[start + k] != phrase[k]) return false;
        return true;
    }

    /// <summary>The highest score any response can reach for this prompt (the top informative phrases, as many as
    /// still add value past the ideal count, then a closing phrase).</summary>
    public double BestScore(WorldPrompt prompt)
    {
        var rules = _world.Rules;
        var values = _world.OfKind(PhraseKind.Informative, prompt.Topic).Select(p => p.Value)
            .Concat(_world.OfKind(PhraseKind.Filler).Select(p => p.Value)).Where(v => v > 0).OrderDescending().ToList();
        double best = rules.ClosingBonus;
        for (int k = 0; k < values.Count; k++)
        {
            int beyond = k - prompt.Ideal + 1;
            double gain = beyond > 0 ? values[k] * Math.Pow(rules.Decay, beyond) - rules.OverLengthPenalty : values[k];
            if (gain <= 0) break;
            best += gain;
        }
        return best;
    }

    /// <summary>Bounds every score lies within: a response of n tokens loses at most the worst per-token rate.</summary>
    public (double Lower, double Upper) ScoreBounds(WorldPrompt prompt, int responseLength)
    {
        var r = _world.Rules;
        double worstPerToken = new[]
        {
            r.GibberishPenalty,
            (-r.MinWrongValue + r.OverLengthPenalty) / 2,          // the shortest phrase has 2 tokens
            (-r.RepeatValue + r.OverLengthPenalty) / 2,
            (-r.OffTopicValue + r.OverLengthPenalty) / 2,
            -r.MisplacedClosingValue / 2,
        }.Max();
        return (-worstPerToken * responseLength - r.MissingEosPenalty, BestScore(prompt));
    }
}
