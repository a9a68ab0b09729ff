using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Judging;
using RlhfGym.PhraseWorld;

namespace RlhfGym.Env.Tests;

/// <summary>The env core's judge contract: bundles name a judge file, plug-ins load it, episodes carry its score.</summary>
public class JudgeContractTests
{
    [Fact]
    public void A_bundle_naming_an_unregistered_judge_is_a_clear_error()
    {
        using var dir = new TempDir();
        PhraseWorld.RandomBundle.Write(dir.Path, 8, seed: 3);
        string env = Path.Combine(dir.Path, EnvBundle.EnvFile);
        File.WriteAllText(env, File.ReadAllText(env).Replace("\"gold_judge\": \"world.json\"", "\"gold_judge\": \"llm-judge.json\""));
        var e = Assert.Throws<InvalidOperationException>(() => EnvBundle.Load(dir.Path));
        Assert.Contains("field 'gold_judge' names 'llm-judge.json'", e.Message);
        Assert.Contains("world.json", e.Message); // what is registered
        Assert.Contains(env, e.Message);
    }

    [Fact]
    public void Registries_refuse_blank_names_and_reregistering_replaces()
    {
        Assert.Throws<ArgumentException>(() => JudgeRegistry.Register(" ", _ => throw new InvalidOperationException()));
        Assert.Throws<ArgumentException>(() => EnvRegistry.Register("", (d, _, _) => d));
        Assert.True(JudgeRegistry.IsRegistered("world.json"));
        Assert.True(EnvRegistry.IsRegistered("PhraseWorld-Segment-v0"));
        var e = Assert.Throws<ArgumentException>(() => EnvRegistry.Resolve("NoSuchWorld-v0"));
        Assert.Contains("PhraseWorld-Segment-v0", e.Message);
    }

    [Fact]
    public void Finished_episodes_carry_the_judge_score_and_the_phrase_world_judge_counts_units()
    {
        using var dir = new TempDir();
        var bundle = PhraseWorld.RandomBundle.Write(dir.Path, 8, seed: 5);
        var judge = Assert.IsType<PhraseWorldJudge>(bundle.Judge);
        using var env = new TextVectorEnv(bundle, 2, bundle.Defaults, AutoresetMode.Disabled);
        var reset = env.Reset(seed: 1);
        var phrase = judge.World.Phrases[0].Tokens;
        int[] response = [.. phrase, bundle.EosIds[0]];
        EpisodeRewards? episode = null;
        foreach (int token in response)
            episode = env.Step(new[] { token, token }).Episodes[0] ?? episode;
        Assert.NotNull(episode);
        var verdict = judge.Judge(reset.PromptIds[0], response);
        Assert.Equal(verdict.Score, episode!.Gold);
        Assert.Equal(phrase.Length, verdict.Length);
        Assert.True(verdict.Terminated);
        Assert.Equal(1, verdict.Units);
        Assert.Throws<KeyNotFoundException>(() => judge.Judge("no-such-prompt", response));
    }
}
