using System.Text.Json.Nodes;
using RlhfGym.Env.Common;

namespace RlhfGym.PhraseWorld.Tests;

public class WorldDialsTests
{
    private static readonly World V0 = TestWorlds.Seed1;

    private static World With(WorldDials dials) => WorldBuilder.Build(1, dials: dials);

    private static Phrase Informative(World w, int topic, int index) => w.OfKind(PhraseKind.Informative, topic).ElementAt(index);

    [Fact]
    public void Every_topic_has_the_informative_count_the_dials_assume() =>
        Assert.All(Enumerable.Range(0, V0.Topics.Count), t => Assert.Equal(WorldBuilder.InformativePerTopic, V0.OfKind(PhraseKind.Informative, t).Count()));

    [Fact]
    public void A_world_with_no_dials_is_v0_and_its_file_says_nothing_of_dials()
    {
        using var dir = new TempDir();
        var w = WorldStore.Build(dir.Path, 5, TestWorlds.Small).World;
        Assert.True(w.Dials.IsNone);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, WorldStore.WorldFile)))!;
        Assert.Equal(World.FormatVersion, (int)json["version"]!);
        Assert.Null(json["dials"]);
    }

    [Theory]
    [InlineData(-0.1, 0, 0, "location_trend")]
    [InlineData(0, 1.5, 0, "boundary_noise")]
    [InlineData(0, 0, double.NaN, "verbosity_bias")]
    public void A_dial_out_of_range_is_refused_by_name(double trend, double noise, double bias, string name)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => With(new WorldDials { LocationTrend = trend, BoundaryNoise = noise, VerbosityBias = bias }));
        Assert.Contains(name, e.Message);
    }

    [Fact]
    public void Location_trend_scales_positive_values_by_position_with_mean_one_and_leaves_negatives_alone()
    {
        var w = With(new WorldDials { LocationTrend = 0.5 });
        var prompt = w.Prompts.First(p => p.Ideal == 5);
        var phrases = new[] { Informative(w, prompt.Topic, 0), Informative(w, prompt.Topic, 1), w.OfKind(PhraseKind.Wrong, prompt.Topic).First(), Informative(w, prompt.Topic, 2) };
        var response = phrases.SelectMany(p => p.Tokens).Append(w.EosId).ToArray();
        var spans = new GoldJudge(w).Judge(prompt, response).Spans;
        // K = 4: multipliers 0.5, 0.8333, 1.1667, 1.5 (mean 1); the wrong phrase (third) keeps its negative value.
        double[] multipliers = [0.5, 1 + 0.5 * (2.0 / 3 - 1), 1 + 0.5 * (4.0 / 3 - 1), 1.5];
        Assert.Equal(1, multipliers.Average(), 12);
        Assert.Equal(phrases[0].Value * multipliers[0], spans[0].Value, 12);
        Assert.Equal(phrases[1].Value * multipliers[1], spans[1].Value, 12);
        Assert.Equal(phrases[2].Value, spans[2].Value, 12);
        Assert.Equal(phrases[3].Value * multipliers[3], spans[3].Value, 12);
        // The same response in v0 is valued as it always was.
        var v0Spans = new GoldJudge(V0).Judge(V0.Prompt(prompt.Id), response).Spans;
        Assert.Equal(phrases.Select(p => p.Value), v0Spans.Select(s => s.Value));
    }

    [Fact]
    public void No_response_beats_the_best_score_or_leaves_the_bounds_in_a_location_trend_world()
    {
        var w = With(new WorldDials { LocationTrend = 0.5 });
        var judge = new GoldJudge(w);
        var behaviour = new BehaviourPolicy(w);
        var rng = new SeededRandom(3);
        foreach (var prompt in w.Split("test"))
        {
            double best = judge.BestScore(prompt);
            // The best response itself: the top informative phrases in ascending value order, then a closing.
            var top = w.OfKind(PhraseKind.Informative, prompt.Topic).OrderByDescending(p => p.Value).Take(prompt.Ideal).Reverse();
            var ordered = top.SelectMany(p => p.Tokens).Concat(w.OfKind(PhraseKind.Closing).First().Tokens).Append(w.EosId).ToArray();
            Assert.True(judge.Judge(prompt, ordered).Score <= best + 1e-9);
            for (int i = 0; i < 50; i++)
            {
                var r = behaviour.Sample(prompt, rng);
                double score = judge.Judge(prompt, r).Score;
                var (lower, upper) = judge.ScoreBounds(prompt, r.Length);
                Assert.InRange(score, lower, upper);
            }
        }
    }

    [Fact]
    public void Boundary_noise_adds_branch_siblings_that_share_two_words_and_parse_as_themselves()
    {
        var w = With(new WorldDials { BoundaryNoise = 0.5 });
        var (stems, heads) = w.Dials.Irregular(WorldBuilder.InformativePerTopic);
        Assert.Equal((2, 2), (stems, heads));
        Assert.Equal(V0.Phrases.Count + V0.Topics.Count * stems * WorldDials.SiblingsPerStem, w.Phrases.Count);
        // The v0 phrases keep their ids, text and values, and the prompts their splits: the siblings are drawn last.
        Assert.Equal(V0.Phrases.Select(p => (p.Id, p.Text, p.Value)), w.Phrases.Take(V0.Phrases.Count).Select(p => (p.Id, p.Text, p.Value)));
        Assert.Equal(V0.Prompts.Select(p => (p.Id, p.Split)), w.Prompts.Select(p => (p.Id, p.Split)));
        var judge = new GoldJudge(w);
        var prompt = w.Prompts[0];
        for (int s = 0; s < stems; s++)
        {
            var stem = Informative(w, prompt.Topic, s);
            var family = w.PhrasesStartingWith(stem.Tokens[0]).ToArray();
            Assert.Equal(1 + WorldDials.SiblingsPerStem, family.Length);
            Assert.All(family, p => Assert.Equal(stem.Tokens[..2], p.Tokens[..2]));
            Assert.Equal(family.Length, family.Select(p => p.Tokens[2]).Distinct().Count()); // a 4-way branch after word 2
            foreach (var p in family)
            {
                var verdict = judge.Judge(prompt, [.. p.Tokens, w.EosId]);
                Assert.Equal(p.Id, Assert.Single(verdict.Spans).PhraseId);
            }
        }
    }

    [Fact]
    public void Collocation_heads_are_followed_by_their_partner_about_eighty_percent_of_the_time()
    {
        var w = With(new WorldDials { BoundaryNoise = 0.5 });
        var behaviour = new BehaviourPolicy(w);
        var judge = new GoldJudge(w);
        var rng = new SeededRandom(7);
        int heads = 0, followed = 0;
        foreach (var prompt in w.Split("train").Where(p => p.Ideal == 5))
            for (int i = 0; i < 100; i++)
            {
                var spans = judge.Judge(prompt, behaviour.Sample(prompt, rng)).Spans;
                for (int k = 0; k + 1 < spans.Count; k++)
                    // A head with another content phrase after it (the policy forces the partner only then).
                    if (spans[k].PhraseId >= 0 && w.CollocationPartner(w.Phrases[spans[k].PhraseId]) is { } partner
                        && spans[k + 1].PhraseId >= 0 && w.Phrases[spans[k + 1].PhraseId].Kind != PhraseKind.Closing)
                    {
                        heads++;
                        if (spans[k + 1].PhraseId == partner.Id) followed++;
                    }
            }
        Assert.True(heads > 300, $"{heads} heads");
        Assert.InRange((double)followed / heads, 0.74, 0.86);
        Assert.Null(V0.CollocationPartner(V0.Phrases[0]));
    }

    [Fact]
    public void Verbosity_bias_makes_labels_favour_the_longer_response()
    {
        var biased = With(new WorldDials { VerbosityBias = 0.1 });
        var behaviour = new BehaviourPolicy(V0);
        double ShareLonger(World w)
        {
            var labeller = new PreferenceLabeller(w, 0.5);
            var rng = new SeededRandom(11);
            var pairs = new List<PreferencePair>();
            foreach (var prompt in w.Split("train"))
                for (int i = 0; i < 20; i++)
                    pairs.Add(labeller.Label(prompt, behaviour.Sample(V0.Prompt(prompt.Id), rng), behaviour.Sample(V0.Prompt(prompt.Id), rng), rng));
            return pairs.Where(p => p.Chosen.Length != p.Rejected.Length).Average(p => p.Chosen.Length > p.Rejected.Length ? 1.0 : 0.0);
        }
        double v0 = ShareLonger(V0), withBias = ShareLonger(biased);
        Assert.True(withBias > v0 + 0.08, $"v0 {v0}, biased {withBias}");
    }

    [Fact]
    public void A_world_with_dials_round_trips_through_its_files_and_bad_dial_fields_are_named()
    {
        using var dir = new TempDir();
        var dials = new WorldDials { LocationTrend = 0.25, BoundaryNoise = 0.5, VerbosityBias = 0.05 };
        var built = WorldStore.Build(dir.Path, 4, TestWorlds.Small, dials).World;
        var loaded = WorldStore.Load(dir.Path);
        Assert.Equal(dials, loaded.Dials);
        Assert.Equal(built.Phrases.Select(p => (p.Text, p.Value)), loaded.Phrases.Select(p => (p.Text, p.Value)));
        string file = Path.Combine(dir.Path, WorldStore.WorldFile);
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        Assert.Equal(WorldStore.DialsVersion, (int)json["version"]!);

        json["dials"]!["boundary_noise"] = 3;
        File.WriteAllText(file, json.ToJsonString());
        Assert.Contains("boundary_noise", Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path)).Message);
        json["dials"]!["boundary_noise"] = "high";
        File.WriteAllText(file, json.ToJsonString());
        Assert.Contains("boundary_noise", Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path)).Message);
        json["version"] = 1;
        json["dials"]!["boundary_noise"] = 0.5;
        File.WriteAllText(file, json.ToJsonString());
        Assert.Contains("'dials' needs version 2", Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path)).Message);
        json["version"] = 2;
        json.Remove("dials");
        File.WriteAllText(file, json.ToJsonString());
        Assert.Contains("dials", Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path)).Message);
    }

    [Fact]
    public void A_phrase_that_is_a_prefix_of_another_is_refused()
    {
        var tok = V0.Tokenizer;
        Phrase P(int id, string text) => new(id, text, tok.Encode(text), PhraseKind.Informative, 0, 1);
        var e = Assert.Throws<InvalidDataException>(() => new World(1, new JudgeRules(), V0.Topics,
            [P(0, "whiskered hunters stalk"), P(1, "whiskered hunters stalk at dusk")], V0.Prompts, tok));
        Assert.Contains("prefix", e.Message);
    }

    [Fact]
    public void Named_worlds_map_v0_env_ids_and_refuse_anything_else()
    {
        Assert.Equal("PhraseWorld-Segment-BoundaryNoise-v1", PhraseWorldPlugin.InWorld("PhraseWorld-Segment-v0", "BoundaryNoise"));
        Assert.Equal("PhraseWorld-Bandit-LocationTrend-v1", PhraseWorldPlugin.InWorld("PhraseWorld-Bandit-v0", "LocationTrend"));
        Assert.Contains("--world must be one of", Assert.Throws<ArgumentException>(() => PhraseWorldPlugin.InWorld("PhraseWorld-Segment-v0", "Noisy")).Message);
        Assert.Contains("'/tmp/bundle' is not one", Assert.Throws<ArgumentException>(() => PhraseWorldPlugin.InWorld("/tmp/bundle", "LocationTrend")).Message);
        PhraseWorldPlugin.Register();
        Assert.All(PhraseWorldPlugin.AllEnvIds, id => Assert.True(RlhfGym.Env.Core.EnvRegistry.IsRegistered(id), id));
        Assert.Equal(12, PhraseWorldPlugin.AllEnvIds.Count());
    }
}
