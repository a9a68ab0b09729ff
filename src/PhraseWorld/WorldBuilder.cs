using RlhfGym.Env.Common;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.PhraseWorld;

/// <summary>Builds a <see cref="World"/> from a seed: phrase values and prompt splits are drawn, text is fixed.</summary>
public static class WorldBuilder
{
    /// <summary>Every topic of the bank has this many informative phrases (a world's dials count in them).</summary>
    public const int InformativePerTopic = PhraseBank.InformativePerTopic;

    public static World Build(long seed, JudgeRules? rules = null, WorldDials? dials = null)
    {
        rules ??= new JudgeRules();
        dials = (dials ?? WorldDials.None).Validated();
        var rng = new SeededRandom(seed);
        var topics = PhraseBank.Topics.Select(t => t.Name).ToList();

        // Vocabulary: specials, prompt words, then phrase words in a fixed order.
        var words = new List<string>();
        void AddWords(string text) => words.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        foreach (var t in PhraseBank.Templates) AddWords(t);
        foreach (var (style, _) in PhraseBank.Styles) AddWords(style);
        foreach (var t in PhraseBank.Topics)
        {
            AddWords(t.Name);
            foreach (var p in t.Informative.Concat(t.Wrong)) AddWords(p);
        }
        foreach (var p in PhraseBank.Fillers.Concat(PhraseBank.Closings)) AddWords(p);
        var tokenizer = new WordTokenizer(World.SpecialTokens, words);

        var phrases = new List<Phrase>();
        Phrase Make(string text, PhraseKind kind, int topic, double value) =>
            new(phrases.Count, text, tokenizer.Encode(text), kind, topic, Math.Round(value, 4));
        for (int t = 0; t < PhraseBank.Topics.Length; t++)
        {
            foreach (var text in PhraseBank.Topics[t].Informative)
                phrases.Add(Make(text, PhraseKind.Informative, t, rng.Uniform(0.5, rules.MaxInformativeValue)));
            foreach (var text in PhraseBank.Topics[t].Wrong)
                phrases.Add(Make(text, PhraseKind.Wrong, t, rng.Uniform(rules.MinWrongValue, -0.8)));
        }
        foreach (var text in PhraseBank.Fillers) phrases.Add(Make(text, PhraseKind.Filler, -1, rng.Uniform(-0.1, 0.1)));
        foreach (var text in PhraseBank.Closings) phrases.Add(Make(text, PhraseKind.Closing, -1, 0));

        // Every (template, topic, style) is a prompt; 70 / 15 / 15 split by seed.
        var prompts = new List<(int Template, int Topic, int Style)>();
        for (int tp = 0; tp < PhraseBank.Templates.Length; tp++)
            for (int t = 0; t < topics.Count; t++)
                for (int s = 0; s < PhraseBank.Styles.Length; s++)
                    prompts.Add((tp, t, s));
        rng.Shuffle(prompts);
        var built = new List<WorldPrompt>();
        for (int i = 0; i < prompts.Count; i++)
        {
            var (tp, t, s) = prompts[i];
            string split = i < prompts.Count * 70 / 100 ? "train" : i < prompts.Count * 85 / 100 ? "validation" : "test";
            var (style, ideal) = PhraseBank.Styles[s];
            string text = $"<user> {PhraseBank.Templates[tp]} {topics[t]} {style} <assistant>";
            built.Add(new WorldPrompt($"p{tp}-{t}-{s}", split, t, style, ideal, text, tokenizer.Encode(text)));
        }
        // Boundary noise: the siblings of each branch stem, drawn after every v0 draw (values and the prompt split)
        // so a world with dials keeps v0's phrase values and its train/validation/test prompts.
        int stems = dials.Irregular(PhraseBank.InformativePerTopic).Stems;
        for (int t = 0; t < PhraseBank.Topics.Length; t++)
            foreach (var text in BranchSiblings(PhraseBank.Topics[t].Informative, stems))
                phrases.Add(Make(text, PhraseKind.Informative, t, rng.Uniform(0.5, rules.MaxInformativeValue)));
        built = built.OrderBy(p => p.Split switch { "train" => 0, "validation" => 1, _ => 2 }).ThenBy(p => p.Id, StringComparer.Ordinal).ToList();
        return new World(seed, rules, topics, phrases, built, tokenizer, dials);
    }

    /// <summary>
    /// The siblings of a topic's first <paramref name="stems"/> informative phrases: each stem's first two words, then
    /// the tail (third word on) of another informative phrase of the topic, so after the stem's second word there is
    /// a 4-way choice. Tails are taken in bank order after the stem, skipping any whose first word is already one of
    /// the family's third words.
    /// </summary>
    public static IEnumerable<string> BranchSiblings(string[] informative, int stems)
    {
        for (int s = 0; s < stems; s++)
        {
            var stemWords = informative[s].Split(' ');
            var thirdWords = new HashSet<string> { stemWords[2] };
            int made = 0;
            for (int k = 1; k < informative.Length && made < WorldDials.SiblingsPerStem; k++)
            {
                var tail = informative[(s + k) % informative.Length].Split(' ').Skip(2).ToArray();
                if (tail.Length == 0 || !thirdWords.Add(tail[0])) continue;
                made++;
                yield return $"{stemWords[0]} {stemWords[1]} {string.Join(' ', tail)}";
            }
        }
    }
}
