using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// A world directory: world.json (seed, rules, phrases and values), word_tokenizer.json, prompts.jsonl, sft.jsonl and
/// pairs.jsonl. Writing is deterministic (same seed → byte-identical files); loading checks every file's presence
/// and version and names the file, line and field of any problem.
/// </summary>
public static class WorldStore
{
    public const string WorldFile = "world.json", TokenizerFile = WordTokenizer.FileName, PromptsFile = "prompts.jsonl",
        SftFile = "sft.jsonl", PairsFile = "pairs.jsonl";
    public const string Format = "rlhfgym.phraseworld";
    /// <summary>world.json's version when the world has dials (<see cref="WorldDials"/>); data files stay version 1.</summary>
    public const int DialsVersion = 2;

    /// <summary>Build the world and its datasets from a seed, write them to a directory, and return them.</summary>
    public static (World World, List<SftExample> Sft, List<PreferencePair> Pairs) Build(string directory, long seed, DatasetSizes? sizes = null, WorldDials? dials = null)
    {
        sizes ??= new DatasetSizes();
        var world = WorldBuilder.Build(seed, dials: dials);
        var behaviour = new BehaviourPolicy(world);
        var judge = new GoldJudge(world);
        var labeller = new PreferenceLabeller(world, sizes.PairTemperature);
        // Separate streams, so changing how many pairs are drawn leaves the SFT data as it was (and vice versa).
        var sftRng = new SeededRandom(seed * 7919 + 17);
        var pairRng = new SeededRandom(seed * 7919 + 29);

        var sft = new List<SftExample>();
        var pairs = new List<PreferencePair>();
        foreach (var prompt in world.Prompts.Where(p => p.Split != "test"))
        {
            bool train = prompt.Split == "train";
            int nSft = train ? sizes.SftPerTrainPrompt : sizes.SftPerValidationPrompt;
            for (int k = 0; k < nSft; k++)
            {
                var response = behaviour.Sample(prompt, sftRng);
                sft.Add(new SftExample(prompt.Id, prompt.Split, response, judge.Judge(prompt, response).Score));
            }
            int nPairs = train ? sizes.PairsPerTrainPrompt : sizes.PairsPerValidationPrompt;
            for (int k = 0; k < nPairs; k++)
            {
                var a = behaviour.Sample(prompt, pairRng);
                var b = behaviour.Sample(prompt, pairRng);
                if (a.AsSpan().SequenceEqual(b)) { k--; continue; }
                pairs.Add(labeller.Label(prompt, a, b, pairRng));
            }
        }
        Save(directory, world);
        WriteSft(Path.Combine(directory, SftFile), world, sft);
        WritePairs(Path.Combine(directory, PairsFile), world, pairs);
        return (world, sft, pairs);
    }

    public static void Save(string directory, World world)
    {
        Directory.CreateDirectory(directory);
        world.Tokenizer.Save(Path.Combine(directory, TokenizerFile));
        var rules = JsonSerializer.SerializeToNode(world.Rules)!;
        var json = new JsonObject
        {
            ["format"] = Format,
            // A world with dials is version 2 and says which; a v0 world's file is as it always was.
            ["version"] = world.Dials.IsNone ? World.FormatVersion : DialsVersion,
            ["seed"] = world.Seed,
            ["rules"] = rules,
            ["topics"] = new JsonArray(world.Topics.Select(t => (JsonNode)t).ToArray()),
            ["phrases"] = new JsonArray(world.Phrases.Select(p => (JsonNode)new JsonObject
            {
                ["id"] = p.Id,
                ["kind"] = p.Kind.ToString(),
                ["topic"] = p.Topic,
                ["value"] = p.Value,
                ["text"] = p.Text,
            }).ToArray()),
        };
        if (!world.Dials.IsNone) json["dials"] = world.Dials.ToJson();
        AtomicFile.WriteAllText(Path.Combine(directory, WorldFile), json.ToJsonString(new JsonSerializerOptions(Jsonl.Options) { WriteIndented = true }) + "\n");
        Jsonl.Write(Path.Combine(directory, PromptsFile), world.Prompts.Select(p => new JsonObject
        {
            ["version"] = World.FormatVersion,
            ["id"] = p.Id,
            ["split"] = p.Split,
            ["topic"] = p.Topic,
            ["style"] = p.Style,
            ["ideal"] = p.Ideal,
            ["text"] = p.Text,
        }));
    }

    public static void WriteSft(string path, World world, IEnumerable<SftExample> examples) =>
        Jsonl.Write(path, examples.Select(e => new JsonObject
        {
            ["version"] = World.FormatVersion,
            ["prompt_id"] = e.PromptId,
            ["split"] = e.Split,
            ["response"] = world.Tokenizer.Decode(e.Response),
            ["gold"] = Math.Round(e.Gold, 6),
        }));

    public static void WritePairs(string path, World world, IEnumerable<PreferencePair> pairs) =>
        Jsonl.Write(path, pairs.Select(p => new JsonObject
        {
            ["version"] = World.FormatVersion,
            ["prompt_id"] = p.PromptId,
            ["split"] = p.Split,
            ["chosen"] = world.Tokenizer.Decode(p.Chosen),
            ["rejected"] = world.Tokenizer.Decode(p.Rejected),
            ["chosen_gold"] = Math.Round(p.ChosenGold, 6),
            ["rejected_gold"] = Math.Round(p.RejectedGold, 6),
        }));

    /// <summary>Load a world directory (world.json, word_tokenizer.json, prompts.jsonl), validating each file.</summary>
    public static World Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: world directory not found (build one with 'rlhfgym world build --out {directory}')");
        string worldPath = Path.Combine(directory, WorldFile);
        var json = JsonFile.ReadObject(worldPath);
        var root = new JsonLine(worldPath, 1, json);
        if (root.String("format") != Format) throw new InvalidDataException($"{worldPath}: field 'format' must be \"{Format}\", got \"{root.String("format")}\"");
        int version = root.Int("version");
        if (version != World.FormatVersion && version != DialsVersion)
            throw new InvalidDataException($"{worldPath}: field 'version' is {version}, this build reads versions {World.FormatVersion} (PhraseWorld v0) and {DialsVersion} (a world with dials)");
        var dials = WorldDials.None;
        if (version == DialsVersion)
        {
            var d = new JsonLine(worldPath, 1, root.Node("dials") as JsonObject ?? throw root.Error("field 'dials' must be an object in a version 2 world"));
            try
            {
                dials = new WorldDials { LocationTrend = d.Double("location_trend"), BoundaryNoise = d.Double("boundary_noise"), VerbosityBias = d.Double("verbosity_bias") }.Validated();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new InvalidDataException($"{worldPath}: field 'dials': {e.Message}", e);
            }
        }
        else if (json["dials"] is not null) throw root.Error($"field 'dials' needs version {DialsVersion}");
        var tokenizer = WordTokenizer.Load(WordTokenizer.PathIn(directory));
        JudgeRules rules;
        try
        {
            // Every rule must be there under its own name: a misspelt or missing one would silently judge by a default.
            var given = root.Node("rules") as JsonObject ?? throw root.Error("field 'rules' must be an object");
            if (typeof(JudgeRules).GetProperties().Select(p => p.Name).FirstOrDefault(name => !given.ContainsKey(name)) is { } missing)
                throw root.Error($"field 'rules' lacks '{missing}'");
            rules = given.Deserialize<JudgeRules>(StrictRules) ?? throw root.Error("field 'rules' is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{worldPath}: field 'rules': {e.Message}", e);
        }
        var topics = root.Array("topics").Select(n => n?.GetValue<string>() ?? throw root.Error("field 'topics' holds a null")).ToList();
        var phrases = new List<Phrase>();
        foreach (var node in root.Array("phrases"))
        {
            var p = new JsonLine(worldPath, 1, node as JsonObject ?? throw root.Error("field 'phrases' holds a non-object"));
            string text = p.String("text");
            var tokens = tokenizer.Encode(text);
            if (tokens.Length < 2 || tokens.Contains(tokenizer.UnkId))
                throw new InvalidDataException($"{worldPath}: phrase {phrases.Count} '{text}' is shorter than 2 words or not in {TokenizerFile}");
            if (!Enum.GetNames<PhraseKind>().Contains(p.String("kind")) || !Enum.TryParse<PhraseKind>(p.String("kind"), out var kind)) throw new InvalidDataException($"{worldPath}: phrase {phrases.Count}: unknown kind '{p.String("kind")}'");
            int topic = p.Int("topic");
            if (topic < -1 || topic >= topics.Count) throw new InvalidDataException($"{worldPath}: phrase {phrases.Count}: topic {topic} out of range");
            phrases.Add(new Phrase(phrases.Count, text, tokens, kind, topic, p.Double("value")));
        }
        var prompts = Jsonl.Read(Path.Combine(directory, PromptsFile), World.FormatVersion, l =>
        {
            int topic = l.Int("topic");
            if (topic < 0 || topic >= topics.Count) throw l.Error($"field 'topic' must be in 0..{topics.Count - 1}");
            string split = l.String("split");
            if (split is not ("train" or "validation" or "test")) throw l.Error($"field 'split' must be train, validation or test, got '{split}'");
            string text = l.String("text");
            return new WorldPrompt(l.String("id"), split, topic, l.String("style"), l.Int("ideal"), text, tokenizer.Encode(text));
        });
        try
        {
            return new World(root.Long("seed"), rules, topics, phrases, prompts, tokenizer, dials);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{worldPath}: {e.Message}", e);
        }
    }

    public static List<SftExample> LoadSft(string directory, World world) =>
        Jsonl.Read(Path.Combine(directory, SftFile), World.FormatVersion, l =>
        {
            string promptId = KnownPrompt(l, world);
            return new SftExample(promptId, l.String("split"), world.Tokenizer.Encode(l.String("response")), l.Double("gold"));
        });

    public static List<PreferencePair> LoadPairs(string directory, World world) => LoadPairsFile(Path.Combine(directory, PairsFile), world);

    public static List<PreferencePair> LoadPairsFile(string path, World world) =>
        Jsonl.Read(path, World.FormatVersion, l =>
        {
            string promptId = KnownPrompt(l, world);
            return new PreferencePair(promptId, l.String("split"), world.Tokenizer.Encode(l.String("chosen")),
                world.Tokenizer.Encode(l.String("rejected")), l.Double("chosen_gold"), l.Double("rejected_gold"));
        });

    private static readonly JsonSerializerOptions StrictRules = new() { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow };

    // A line's prompt_id, which must name a prompt of the world (an error naming the file and line, not a bare lookup failure).
    private static string KnownPrompt(JsonLine l, World world)
    {
        string id = l.String("prompt_id");
        if (!world.Prompts.Any(p => p.Id == id)) throw l.Error($"field 'prompt_id': '{id}' is not a prompt of this world");
        return id;
    }
}
