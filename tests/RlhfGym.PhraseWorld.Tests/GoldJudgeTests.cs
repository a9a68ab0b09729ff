using RlhfGym.PhraseWorld;

namespace RlhfGym.PhraseWorld.Tests;

public class GoldJudgeTests
{
    private static readonly World W = TestWorlds.Seed1;
    private static readonly GoldJudge Judge = new(W);
    private static readonly JudgeRules R = W.Rules;
    // A "normally" prompt about cats (topic 0): ideal 3 content phrases.
    private static readonly WorldPrompt Cats = W.Prompts.First(p => p.Topic == 0 && p.Ideal == 3);

    private static Phrase Informative(int k, int topic = 0) => W.OfKind(PhraseKind.Informative, topic).ElementAt(k);
    private static int[] Say(params Phrase[] phrases) => phrases.SelectMany(p => p.Tokens).Append(W.EosId).ToArray();

    [Fact]
    public void On_topic_informative_phrases_add_their_values()
    {
        var v = Judge.Judge(Cats, Say(Informative(0), Informative(1)));
        Assert.Equal(Informative(0).Value + Informative(1).Value, v.Score, 9);
        Assert.True(v.Terminated);
        Assert.Equal(2, v.ContentPhrases);
        Assert.Equal([Informative(0).Tokens.Length - 1, Informative(0).Tokens.Length + Informative(1).Tokens.Length - 1], v.BoundaryEnds);
    }

    [Fact]
    public void Off_topic_wrong_filler_and_repeat_values()
    {
        var wrong = W.OfKind(PhraseKind.Wrong, 0).First();
        var filler = W.OfKind(PhraseKind.Filler).First();
        Assert.Equal(R.OffTopicValue, Judge.Judge(Cats, Say(Informative(0, topic: 3))).Score, 9);
        Assert.Equal(wrong.Value, Judge.Judge(Cats, Say(wrong)).Score, 9);
        Assert.True(wrong.Value < R.OffTopicValue);
        Assert.Equal(filler.Value, Judge.Judge(Cats, Say(filler)).Score, 9);
        var repeated = Judge.Judge(Cats, Say(Informative(0), Informative(0)));
        Assert.Equal(Informative(0).Value + R.RepeatValue, repeated.Score, 9);
        Assert.Equal(1, repeated.Repeats);
    }

    [Fact]
    public void Phrases_past_the_ideal_count_decay_and_pay_a_length_penalty()
    {
        var phrases = Enumerable.Range(0, 5).Select(k => Informative(k)).ToArray();
        double expected = phrases.Take(3).Sum(p => p.Value)
            + (phrases[3].Value * R.Decay - R.OverLengthPenalty)
            + (phrases[4].Value * R.Decay * R.Decay - R.OverLengthPenalty);
        Assert.Equal(expected, Judge.Judge(Cats, Say(phrases)).Score, 9);
    }

    [Fact]
    public void Closing_pays_only_as_the_last_phrase()
    {
        var closing = W.OfKind(PhraseKind.Closing).First();
        Assert.Equal(Informative(0).Value + R.ClosingBonus, Judge.Judge(Cats, Say(Informative(0), closing)).Score, 9);
        Assert.Equal(R.MisplacedClosingValue + Informative(0).Value, Judge.Judge(Cats, Say(closing, Informative(0))).Score, 9);
        // A closing does not count toward the ideal number of content phrases.
        Assert.Equal(1, Judge.Judge(Cats, Say(Informative(0), closing)).ContentPhrases);
    }

    [Fact]
    public void Gibberish_missing_eos_and_tokens_after_eos()
    {
        int unk = W.Tokenizer.UnkId;
        var broken = Informative(0).Tokens.Take(1).Concat(Informative(1).Tokens).Append(unk).Append(W.EosId).ToArray();
        var v = Judge.Judge(Cats, broken);
        Assert.Equal(2, v.GibberishTokens); // the lone first word of phrase 0, and <unk>
        Assert.Equal(Informative(1).Value - 2 * R.GibberishPenalty, v.Score, 9);
        var noEos = Informative(0).Tokens;
        Assert.Equal(Informative(0).Value - R.MissingEosPenalty, Judge.Judge(Cats, noEos).Score, 9);
        Assert.False(Judge.Judge(Cats, noEos).Terminated);
        var afterEos = Say(Informative(0)).Concat(Informative(1).Tokens).ToArray();
        Assert.Equal(Informative(0).Value, Judge.Judge(Cats, afterEos).Score, 9);
    }

    [Fact]
    public void Odd_inputs_never_throw()
    {
        Assert.Equal(-R.MissingEosPenalty, Judge.Judge(Cats, []).Score);
        Assert.Equal(0, Judge.Judge(Cats, [W.EosId]).Score);
        var v = Judge.Judge(Cats, [-5, 99999, int.MaxValue, W.EosId]);
        Assert.Equal(3, v.GibberishTokens);
    }

    [Fact]
    public void Best_score_is_reached_by_the_best_response_and_never_beaten()
    {
        var best = W.OfKind(PhraseKind.Informative, 0).Concat(W.OfKind(PhraseKind.Filler)).Where(p => p.Value > 0)
            .OrderByDescending(p => p.Value).ToList();
        double bestScore = Judge.BestScore(Cats);
        double bestSeen = double.NegativeInfinity;
        for (int k = 1; k <= best.Count; k++)
        {
            var response = Say(best.Take(k).Append(W.OfKind(PhraseKind.Closing).First()).ToArray());
            bestSeen = Math.Max(bestSeen, Judge.Judge(Cats, response).Score);
        }
        Assert.Equal(bestScore, bestSeen, 9);
    }

    [Fact]
    public void Fuzz_random_sequences_stay_within_bounds()
    {
        var rng = new Random(123);
        var phrases = W.Phrases;
        for (int trial = 0; trial < 5000; trial++)
        {
            var prompt = W.Prompts[rng.Next(W.Prompts.Count)];
            var tokens = new List<int>();
            int len = rng.Next(0, 80);
            while (tokens.Count < len)
            {
                switch (rng.Next(4))
                {
                    case 0: tokens.Add(rng.Next(-3, W.Tokenizer.VocabSize + 3)); break;  // any id, some invalid
                    case 1: tokens.AddRange(phrases[rng.Next(phrases.Count)].Tokens); break;
                    case 2: tokens.AddRange(phrases[rng.Next(phrases.Count)].Tokens.Take(rng.Next(1, 4))); break;
                    default: if (rng.Next(10) == 0) tokens.Add(W.EosId); break;
                }
            }
            var verdict = Judge.Judge(prompt, tokens.ToArray());
            var (lower, upper) = Judge.ScoreBounds(prompt, tokens.Count);
            Assert.True(double.IsFinite(verdict.Score));
            Assert.InRange(verdict.Score, lower, upper);
            Assert.Equal(verdict.Score, verdict.Spans.Sum(s => s.Value) - (verdict.Terminated ? 0 : R.MissingEosPenalty), 6);
        }
    }
}
