using RlhfGym.Models.Tokenization;

namespace RlhfGym.PhraseWorld;

public enum PhraseKind { Informative, Wrong, Filler, Closing }

/// <summary>One phrase of the world. Topic is -1 for shared fillers and closings.</summary>
public sealed record Phrase(int Id, string Text, int[] Tokens, PhraseKind Kind, int Topic, double Value);

/// <summary>A prompt: "&lt;user&gt; {template} {topic} {style} &lt;assistant&gt;", in the train, validation or test split.</summary>
public sealed record WorldPrompt(string Id, string Split, int Topic, string Style, int Ideal, string Text, int[] Tokens);

/// <summary>The judge's constants. Stored in world.json so a world carries the rules it was built with.</summary>
public sealed record JudgeRules
{
    public double GibberishPenalty { get; init; } = 0.5;      // per unparseable token
    public double RepeatValue { get; init; } = -0.5;          // a phrase said again
    public double OffTopicValue { get; init; } = -0.5;        // a phrase of another topic
    public double Decay { get; init; } = 0.5;                 // positive values past the ideal count shrink by this per phrase
    public double OverLengthPenalty { get; init; } = 0.3;     // per content phrase past the ideal count
    public double ClosingBonus { get; init; } = 0.5;          // a closing phrase as the last phrase
    public double MisplacedClosingValue { get; init; } = -0.2; // a closing phrase anywhere else
    public double MissingEosPenalty { get; init; } = 1.0;     // the response never emitted <eos>
    public double MaxInformativeValue { get; init; } = 1.5;
    public double MinWrongValue { get; init; } = -1.5;
}

/// <summary>
/// A built PhraseWorld: topics, phrases with their seeded values, the vocabulary and the prompt splits.
/// Everything else (judge, behaviour policy, datasets) reads from this.
/// </summary>
public sealed class World
{
    public const int FormatVersion = 1;
    public const string Eos = WordTokenizer.Eos;
    public static readonly string[] SpecialTokens = ["<user>", "<assistant>"];

    public long Seed { get; }
    public JudgeRules Rules { get; }
    public IReadOnlyList<string> Topics { get; }
    public IReadOnlyList<Phrase> Phrases { get; }
    public IReadOnlyList<WorldPrompt> Prompts { get; }
    public WordTokenizer Tokenizer { get; }
    /// <summary>The dials this world was built with (<see cref="WorldDials.None"/>: PhraseWorld v0).</summary>
    public WorldDials Dials { get; }
    private readonly Dictionary<int, Phrase[]> _byLeadToken;
    private readonly Dictionary<int, Phrase> _collocationPartner = [];

    public World(long seed, JudgeRules rules, IReadOnlyList<string> topics, IReadOnlyList<Phrase> phrases,
        IReadOnlyList<WorldPrompt> prompts, WordTokenizer tokenizer, WorldDials? dials = null)
    {
        Seed = seed;
        Rules = rules;
        Topics = topics;
        Phrases = phrases;
        Prompts = prompts;
        Tokenizer = tokenizer;
        Dials = (dials ?? WorldDials.None).Validated();
        // Phrases may share a first word (a boundary-noise world's branch stems), but none may be a prefix of
        // another: then the judge's greedy parse has exactly one phrase to match at any position.
        _byLeadToken = phrases.GroupBy(p => p.Tokens[0]).ToDictionary(g => g.Key, g => g.ToArray());
        foreach (var group in _byLeadToken.Values)
            foreach (var a in group)
                foreach (var b in group)
                    if (a != b && a.Tokens.Length <= b.Tokens.Length && b.Tokens.AsSpan(0, a.Tokens.Length).SequenceEqual(a.Tokens))
                        throw new InvalidDataException($"phrase '{a.Text}' is a prefix of phrase '{b.Text}': the judge could not tell them apart");
        var (stems, heads) = Dials.Irregular(PhraseBank.InformativePerTopic);
        for (int t = 0; t < topics.Count && heads > 0; t++)
        {
            var informative = OfKind(PhraseKind.Informative, t).Take(PhraseBank.InformativePerTopic).ToArray();
            for (int j = 0; j < heads && stems + j < informative.Length; j++)
                _collocationPartner[informative[stems + j].Id] = informative[(stems + heads + j) % informative.Length];
        }
    }

    public int EosId => Tokenizer.EosId;

    /// <summary>The phrases that start with this token (none, one, or a branch stem's family).</summary>
    public ReadOnlySpan<Phrase> PhrasesStartingWith(int token) => _byLeadToken.TryGetValue(token, out var group) ? group : [];

    /// <summary>In a boundary-noise world, the phrase the behaviour policy usually says right after this one.</summary>
    public Phrase? CollocationPartner(Phrase phrase) => _collocationPartner.GetValueOrDefault(phrase.Id);

    public IEnumerable<WorldPrompt> Split(string split) => Prompts.Where(p => p.Split == split);

    public WorldPrompt Prompt(string id) => Prompts.FirstOrDefault(p => p.Id == id)
        ?? throw new KeyNotFoundException($"prompt '{id}' is not in this world");

    public IEnumerable<Phrase> OfKind(PhraseKind kind, int topic = -1) =>
        Phrases.Where(p => p.Kind == kind && (topic < 0 || p.Topic == topic));
}
