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
        var dials = _world.Dials;
        // First the parse (phrases and gibberish runs up to the first EOS), then the values: a location-trend world
        // values a content phrase by where it stands among all of the response's content phrases.
        var parsed = new List<(int Start, int End, Phrase? Phrase)>();
        int eos = _world.EosId, i = 0, gibberishStart = -1, contentCount = 0;
        bool terminated = false;
        while (i < response.Length)
        {
            if (response[i] == eos) { terminated = true; break; }
            var phrase = MatchAt(response, i);
            if (phrase is null)
            {
                if (gibberishStart < 0) gibberishStart = i;
                i++;
                continue;
            }
            if (gibberishStart >= 0) parsed.Add((gibberishStart, i - 1, null));
            gibberishStart = -1;
            int end = i + phrase.Tokens.Length - 1;
            parsed.Add((i, end, phrase));
            if (phrase.Kind != PhraseKind.Closing) contentCount++;
            i = end + 1;
        }
        if (gibberishStart >= 0) parsed.Add((gibberishStart, i - 1, null));

        var spans = new List<JudgedSpan>();
        var seen = new HashSet<int>();
        int content = 0, repeats = 0, gibberish = 0;
        double score = 0;
        foreach (var (start, end, phrase) in parsed)
        {
            double value;
            if (phrase is null)
            {
                int n = end - start + 1;
                value = -rules.GibberishPenalty * n;
                gibberish += n;
            }
            else if (phrase.Kind == PhraseKind.Closing)
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
                if (value > 0 && dials.LocationTrend != 0) value *= dials.LocationMultiplier(content + 1, contentCount);
                int beyond = content - prompt.Ideal + 1; // > 0 once past the ideal count
                if (beyond > 0)
                {
                    if (value > 0) value *= Math.Pow(rules.Decay, beyond);
                    value -= rules.OverLengthPenalty;
                }
                content++;
            }
            spans.Add(new JudgedSpan(start, end, phrase?.Id ?? -1, value));
            score += value;
        }
        if (!terminated) score -= rules.MissingEosPenalty;
        return new GoldVerdict(score, spans, terminated, content, repeats, gibberish, i);
    }

    /// <summary>The phrase that starts at <paramref name="start"/>, if any (at most one: no phrase is a prefix of another).</summary>
    private Phrase? MatchAt(ReadOnlySpan<int> response, int start)
    {
        foreach (var phrase in _world.PhrasesStartingWith(response[start]))
            if (Matches(response, start, phrase.Tokens)) return phrase;
        return null;
    }

    private static bool Matches(ReadOnlySpan<int> response, int start, int[] phrase)
    {
        if (start + phrase.Length > response.Length) return false;
        for (int k = 0; k < phrase.Length; k++)
            if (response[start + k] != phrase[k]) return false;
        return true;
    }

    /// <summary>The prompt's positive phrase values, best first.</summary>
    private List<double> PositiveValues(WorldPrompt prompt) => _world.OfKind(PhraseKind.Informative, prompt.Topic).Select(p => p.Value)
        .Concat(_world.OfKind(PhraseKind.Filler).Select(p => p.Value)).Where(v => v > 0).OrderDescending().ToList();

    /// <summary>
    /// The highest score any response can reach for this prompt (the top informative phrases, as many as still add
    /// value past the ideal count, then a closing phrase). In a location-trend world: the best over every count m of
    /// the top m positive phrases, each set in the order that pairs the larger values with the larger position
    /// weights (responses that pad with negative phrases to move the others later are not searched).
    /// </summary>
    public double BestScore(WorldPrompt prompt)
    {
        var rules = _world.Rules;
        var values = PositiveValues(prompt);
        if (_world.Dials.LocationTrend != 0) return BestScoreWithTrend(prompt, values);
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

    private double BestScoreWithTrend(WorldPrompt prompt, List<double> values)
    {
        var rules = _world.Rules;
        double best = rules.ClosingBonus;
        for (int m = 1; m <= values.Count; m++)
        {
            // Position k's weight: its location multiplier times the decay past the ideal count.
            var positions = Enumerable.Range(0, m)
                .Select(k => (K: k, Weight: _world.Dials.LocationMultiplier(k + 1, m) * (k - prompt.Ideal + 1 > 0 ? Math.Pow(rules.Decay, k - prompt.Ideal + 1) : 1)))
                .OrderByDescending(p => p.Weight).ToList();
            double total = rules.ClosingBonus;
            for (int j = 0; j < m; j++)
                total += values[j] * positions[j].Weight - (positions[j].K - prompt.Ideal + 1 > 0 ? rules.OverLengthPenalty : 0);
            best = Math.Max(best, total);
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
        // With a location trend no phrase is worth more than (1 + τ) times its value, and each counts once.
        double upper = _world.Dials.LocationTrend == 0 ? BestScore(prompt)
            : r.ClosingBonus + (1 + _world.Dials.LocationTrend) * PositiveValues(prompt).Sum();
        return (-worstPerToken * responseLength - r.MissingEosPenalty, upper);
    }
}
