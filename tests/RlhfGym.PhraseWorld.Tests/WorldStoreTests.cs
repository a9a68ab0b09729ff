using RlhfGym.PhraseWorld;

namespace RlhfGym.PhraseWorld.Tests;

public class WorldStoreTests
{
    private static Dictionary<string, byte[]> Files(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    [Fact]
    public void Same_seed_writes_byte_identical_files_and_another_seed_differs()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using var c = new TempDir();
        WorldStore.Build(a.Path, 5, TestWorlds.Small);
        WorldStore.Build(b.Path, 5, TestWorlds.Small);
        WorldStore.Build(c.Path, 6, TestWorlds.Small);
        var fa = Files(a.Path);
        var fb = Files(b.Path);
        Assert.Equal(fa.Keys.Order(), fb.Keys.Order());
        foreach (var name in fa.Keys) Assert.True(fa[name].AsSpan().SequenceEqual(fb[name]), $"{name} differs for the same seed");
        var fc = Files(c.Path);
        Assert.False(fa[WorldStore.WorldFile].AsSpan().SequenceEqual(fc[WorldStore.WorldFile]));
        Assert.False(fa[WorldStore.PairsFile].AsSpan().SequenceEqual(fc[WorldStore.PairsFile]));
    }

    [Fact]
    public void A_built_world_loads_back_with_the_same_content()
    {
        using var dir = new TempDir();
        var built = WorldStore.Build(dir.Path, 9, TestWorlds.Small).World;
        var loaded = WorldStore.Load(dir.Path);
        Assert.Equal(built.Seed, loaded.Seed);
        Assert.Equal(built.Phrases.Select(p => (p.Text, p.Value, p.Kind)), loaded.Phrases.Select(p => (p.Text, p.Value, p.Kind)));
        Assert.Equal(built.Prompts.Select(p => p.Text), loaded.Prompts.Select(p => p.Text));
        var pairs = WorldStore.LoadPairs(dir.Path, loaded);
        Assert.NotEmpty(pairs);
        Assert.All(pairs, p => Assert.Equal(loaded.EosId, p.Chosen[^1]));
        var sft = WorldStore.LoadSft(dir.Path, loaded);
        var judge = new GoldJudge(loaded);
        Assert.All(sft, e => Assert.True(Math.Abs(e.Gold - judge.Judge(loaded.Prompt(e.PromptId), e.Response).Score) < 1e-5));
    }

    [Fact]
    public void Prompt_splits_are_disjoint_and_cover_every_prompt()
    {
        var w = TestWorlds.Seed1;
        Assert.Equal(w.Prompts.Count, w.Prompts.Select(p => p.Id).Distinct().Count());
        Assert.Equal(w.Prompts.Count, w.Split("train").Count() + w.Split("validation").Count() + w.Split("test").Count());
        Assert.True(w.Topics.Count >= 12);
    }

    [Fact]
    public void Missing_or_foreign_version_files_are_named()
    {
        using var dir = new TempDir();
        WorldStore.Build(dir.Path, 3, TestWorlds.Small);
        string worldJson = dir.File(WorldStore.WorldFile);
        string original = File.ReadAllText(worldJson);

        File.WriteAllText(worldJson, original.Replace("\"version\": 1", "\"version\": 7"));
        var ex = Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path));
        Assert.Contains(WorldStore.WorldFile, ex.Message);
        Assert.Contains("version", ex.Message);
        File.WriteAllText(worldJson, original);

        string prompts = dir.File(WorldStore.PromptsFile);
        var lines = File.ReadAllLines(prompts);
        lines[2] = lines[2].Replace("\"version\":1", "\"version\":2");
        File.WriteAllLines(prompts, lines);
        ex = Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path));
        Assert.Contains($"{WorldStore.PromptsFile}:3", ex.Message);

        File.Delete(dir.File(WorldStore.TokenizerFile));
        Assert.Contains(WorldStore.TokenizerFile, Assert.Throws<FileNotFoundException>(() => WorldStore.Load(dir.Path)).Message);
        File.Delete(worldJson);
        Assert.Contains(WorldStore.WorldFile, Assert.Throws<FileNotFoundException>(() => WorldStore.Load(dir.Path)).Message);
        Assert.Throws<DirectoryNotFoundException>(() => WorldStore.Load(dir.File("nowhere")));
    }

    [Fact]
    public void Corrupt_dataset_line_is_named()
    {
        using var dir = new TempDir();
        var world = WorldStore.Build(dir.Path, 3, TestWorlds.Small).World;
        File.AppendAllText(dir.File(WorldStore.SftFile), "{\"version\":1,\"prompt_id\":\"p0-0-0\",\"split\":\"train\",\"response\":\"x\"}\n");
        var ex = Assert.Throws<InvalidDataException>(() => WorldStore.LoadSft(dir.Path, world));
        Assert.Contains("'gold'", ex.Message);
        Assert.Contains(WorldStore.SftFile, ex.Message);
    }

    [Fact]
    public void A_dataset_line_naming_an_unknown_prompt_is_named()
    {
        using var dir = new TempDir();
        var world = WorldStore.Build(dir.Path, 3, TestWorlds.Small).World;
        File.AppendAllText(dir.File(WorldStore.PairsFile),
            "{\"version\":1,\"prompt_id\":\"nope\",\"split\":\"train\",\"chosen\":\"x\",\"rejected\":\"y\",\"chosen_gold\":1,\"rejected_gold\":0}\n");
        var ex = Assert.Throws<InvalidDataException>(() => WorldStore.LoadPairs(dir.Path, world));
        Assert.Contains(WorldStore.PairsFile, ex.Message);
        Assert.Contains("'nope' is not a prompt of this world", ex.Message);
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("misspelt")]
    [InlineData("kind")]
    public void Judge_rules_and_phrase_kinds_must_be_given_exactly(string fault)
    {
        // A rule left out or misspelt would silently judge by its default; a kind "7" would be a kind by number.
        using var dir = new TempDir();
        WorldStore.Build(dir.Path, 3, TestWorlds.Small);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(dir.File(WorldStore.WorldFile)))!.AsObject();
        var rules = json["rules"]!.AsObject();
        switch (fault)
        {
            case "missing": rules.Remove("Decay"); break;
            case "misspelt": rules["Decy"] = 0.5; break;
            case "kind": json["phrases"]!.AsArray()[0]!["kind"] = "7"; break;
        }
        File.WriteAllText(dir.File(WorldStore.WorldFile), json.ToJsonString());
        var ex = Assert.Throws<InvalidDataException>(() => WorldStore.Load(dir.Path));
        Assert.Contains(WorldStore.WorldFile, ex.Message);
        Assert.Contains(fault switch { "missing" => "lacks 'Decay'", "misspelt" => "Decy", _ => "unknown kind '7'" }, ex.Message);
    }
}
