using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Env.Judging;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Options;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.HuggingFace;
using RlhfGym.Models.Tokenization;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Env.Bundles;

/// <summary>A prompt of a bundle's prompt set.</summary>
public sealed record BundlePrompt(string Id, string Split, string Text, int[] Tokens);

/// <summary>
/// An env bundle: a directory holding everything one environment needs.
/// <code>
/// env.json            format, version, name, tokenizer, EOS ids, reward mode and c_ent, default options, RM figures
/// word_tokenizer.json the tokenizer (a word tokenizer; bundles before 0.2 named it tokenizer.json), or
/// tokenizer/          a Hugging Face tokenizer (tokenizer.json or tokenizer.model, tokenizer_config.json)
/// prompts.jsonl       the prompt set with splits
/// normalizers.json    fitted normalizers, one per kind (location, global, last, none)
/// reference/          the frozen reference LM (rlhfgym_config.json + rlhfgym_model.safetensors)
/// reward/             the reward model (rlhfgym_config.json + rlhfgym_model.safetensors with score.weight)
/// gold_judge          optional: a judge's file (PhraseWorld: world.json), loaded through JudgeRegistry; evaluation only
/// </code>
/// <see cref="Load"/> validates all of it and names the file and field of any problem; weights are read only when a
/// model is loaded, but their headers, names and shapes are checked up front.
/// </summary>
public sealed class EnvBundle
{
    public const string Format = "rlhfgym.envbundle";
    public const int FormatVersion = 1;
    public const string EnvFile = "env.json", NormalizersFile = "normalizers.json", PromptsFile = "prompts.jsonl",
        TokenizerFile = WordTokenizer.FileName, HfTokenizerDir = "tokenizer", ReferenceDir = "reference", RewardDir = "reward";

    // env.json's layout of the default options (unchanged since version 1): the reading in "reward", the rest of the
    // options a bundle fixes in "options". dense_as_bandit and prompt_split are per-env choices a bundle leaves out,
    // but "options" may hold them, and any other key of EnvOptionTable.
    private static readonly string[] RewardKeys = ["mode", "c_ent"];
    private static readonly string[] OptionKeys = ["normalizer", "interpolation", "delivery", "max_new_tokens", "missing_eos", "missing_eos_penalty"];

    public string Directory { get; }
    public string Name { get; }
    public EnvOptions Defaults { get; }
    public ITokenizer Tokenizer { get; }
    /// <summary>The action space: the models' vocabulary (a Hugging Face model's may be padded past its tokenizer's).</summary>
    public int VocabSize { get; }
    /// <summary>Ids that end a response; the first is the one the env feeds and scores as EOS.</summary>
    public IReadOnlyList<int> EosIds { get; }
    public int PadId { get; }
    public IReadOnlyList<BundlePrompt> Prompts { get; }
    public IReadOnlyDictionary<NormalizerKind, RewardNormalizer> Normalizers { get; }
    public TransformerConfig ReferenceConfig { get; }
    public TransformerConfig RewardConfig { get; }
    /// <summary>The longest sequence (prompt + response) both models take in one forward: the smaller max_seq_len.</summary>
    public int MaxSequenceLength => Math.Min(ReferenceConfig.MaxSeqLen, RewardConfig.MaxSeqLen);
    /// <summary>The bundle's judge when it has one (a world's gold judge); for evaluation only, never part of the reward.</summary>
    public IEpisodeJudge? Judge { get; }
    public JsonObject Info { get; }

    private EnvBundle(string directory, string name, EnvOptions defaults, ITokenizer tokenizer, int vocabSize, IReadOnlyList<int> eosIds, int padId,
        IReadOnlyList<BundlePrompt> prompts, IReadOnlyDictionary<NormalizerKind, RewardNormalizer> normalizers,
        TransformerConfig referenceConfig, TransformerConfig rewardConfig, IEpisodeJudge? judge, JsonObject info)
    {
        Directory = directory;
        Name = name;
        Defaults = defaults;
        Tokenizer = tokenizer;
        VocabSize = vocabSize;
        PadId = padId;
        EosIds = eosIds;
        Prompts = prompts;
        Normalizers = normalizers;
        ReferenceConfig = referenceConfig;
        RewardConfig = rewardConfig;
        Judge = judge;
        Info = info;
    }

    public CausalTransformer LoadReference(TorchSharp.torch.Device device)
    {
        var (model, _) = ModelCheckpoint.Load(Path.Combine(Directory, ReferenceDir), device);
        model.eval();
        return model;
    }

    public RewardModel LoadRewardModel(TorchSharp.torch.Device device)
    {
        var rm = RewardModel.Load(Path.Combine(Directory, RewardDir), device);
        rm.Train(false);
        return rm;
    }

    /// <summary>
    /// Writes the bundle's tokenizer in Hugging Face's format into <paramref name="directory"/>: a word tokenizer as a
    /// WordLevel tokenizer.json + tokenizer_config.json, a Hugging Face bundle's tokenizer files as they are.
    /// </summary>
    public void WriteHfTokenizer(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        switch (Tokenizer)
        {
            case WordTokenizer word:
                HfWordLevelTokenizer.Write(word, directory);
                break;
            default:
                foreach (var file in System.IO.Directory.GetFiles(Path.Combine(Directory, HfTokenizerDir)))
                    File.Copy(file, Path.Combine(directory, Path.GetFileName(file)), overwrite: true);
                break;
        }
    }

    /// <summary>Write a bundle (env.json last, so a directory without it is never mistaken for a complete bundle).</summary>
    public static void Write(string directory, string name, EnvOptions defaults, WordTokenizer tokenizer, IReadOnlyList<BundlePrompt> prompts,
        IReadOnlyDictionary<NormalizerKind, RewardNormalizer> normalizers, CausalTransformer reference, RewardModel reward,
        BundleJudge? judge, JsonObject rmReport) =>
        Write(directory, name, defaults, dir => tokenizer.Save(Path.Combine(dir, TokenizerFile)), new JsonObject
        {
            ["file"] = TokenizerFile,
            ["type"] = "word",
            ["vocab_size"] = tokenizer.VocabSize,
            ["eos_ids"] = new JsonArray(tokenizer.EosId),
            ["pad_id"] = tokenizer.PadId,
        }, prompts, normalizers, reference, reward, judge, rmReport);

    /// <summary>Write a bundle around Hugging Face models: the tokenizer files are copied into tokenizer/.</summary>
    /// <param name="tokenizerFiles">tokenizer.json or tokenizer.model, with tokenizer_config.json and the like.</param>
    /// <param name="eosIds">Ids that end a response (eos_token, and a chat model's end-of-turn token).</param>
    public static void WriteHf(string directory, string name, EnvOptions defaults, IReadOnlyList<string> tokenizerFiles, int vocabSize,
        IReadOnlyList<int> eosIds, int padId, IReadOnlyList<BundlePrompt> prompts, IReadOnlyDictionary<NormalizerKind, RewardNormalizer> normalizers,
        CausalTransformer reference, RewardModel reward, JsonObject info) =>
        Write(directory, name, defaults, dir =>
        {
            // A fresh folder: a tokenizer file left by an earlier build into this directory (a tokenizer.json beside a new
            // tokenizer.model) would be the one that loads.
            string target = Path.Combine(dir, HfTokenizerDir);
            if (System.IO.Directory.Exists(target)) System.IO.Directory.Delete(target, recursive: true);
            System.IO.Directory.CreateDirectory(target);
            foreach (var file in tokenizerFiles) File.Copy(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
        }, new JsonObject
        {
            ["file"] = HfTokenizerDir,
            ["type"] = "hf",
            ["vocab_size"] = vocabSize,
            ["eos_ids"] = new JsonArray(eosIds.Select(id => (JsonNode)id).ToArray()),
            ["pad_id"] = padId,
        }, prompts, normalizers, reference, reward, null, info);

    private static void Write(string directory, string name, EnvOptions defaults, Action<string> writeTokenizer, JsonObject tokenizerSection,
        IReadOnlyList<BundlePrompt> prompts, IReadOnlyDictionary<NormalizerKind, RewardNormalizer> normalizers, CausalTransformer reference,
        RewardModel reward, BundleJudge? judge, JsonObject rmReport)
    {
        defaults.Validate();
        System.IO.Directory.CreateDirectory(directory);
        string envPath = Path.Combine(directory, EnvFile);
        if (File.Exists(envPath)) File.Delete(envPath); // the bundle is incomplete until env.json is back
        ModelCheckpoint.Save(Path.Combine(directory, ReferenceDir), reference, metadata: new Dictionary<string, string> { ["kind"] = "reference" });
        reward.Save(Path.Combine(directory, RewardDir), new Dictionary<string, string> { ["kind"] = "reward", ["mode"] = defaults.Reading.Name });
        writeTokenizer(directory);
        Jsonl.Write(Path.Combine(directory, PromptsFile), prompts.Select(p => new JsonObject
        {
            ["version"] = FormatVersion,
            ["id"] = p.Id,
            ["split"] = p.Split,
            ["text"] = p.Text,
        }));
        judge?.WriteInto(directory); // after the prompts: a judge may rewrite prompts.jsonl with fields of its own
        var norms = new JsonObject { ["version"] = FormatVersion };
        foreach (var (kind, n) in normalizers) norms[RewardNormalizer.KindName(kind)] = n.ToJson();
        AtomicFile.WriteAllText(Path.Combine(directory, NormalizersFile), norms.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var env = new JsonObject
        {
            ["format"] = Format,
            ["version"] = FormatVersion,
            ["name"] = name,
            ["rlhfgym_version"] = RuntimeInfo.PackageVersion,
            ["torchsharp_version"] = RuntimeInfo.TorchSharpVersion,
            // What trained the models: the same world seed on another machine or MKL branch trains other weights.
            ["built_on"] = RuntimeInfo.Machine(reference.Device),
            ["tokenizer"] = tokenizerSection,
            ["reference"] = ReferenceDir,
            ["reward_model"] = RewardDir,
            ["prompts"] = PromptsFile,
            ["normalizers"] = NormalizersFile,
            ["gold_judge"] = judge?.File,
            ["reward"] = EnvOptionsJson.Write(defaults, RewardKeys),
            ["options"] = EnvOptionsJson.Write(defaults, OptionKeys),
            ["rm"] = rmReport,
        };
        AtomicFile.WriteAllText(envPath, env.ToJsonString(new JsonSerializerOptions(Jsonl.Options) { WriteIndented = true }) + "\n");
    }

    public static EnvBundle Load(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: env bundle directory not found");
        string envPath = Path.Combine(directory, EnvFile);
        if (!File.Exists(envPath)) throw new FileNotFoundException($"{envPath}: file not found (not a complete env bundle)", envPath);
        var json = JsonFile.ReadObject(envPath);
        var env = new JsonLine(envPath, 1, json);
        InvalidDataException Bad(string field, string expected) => new($"{envPath}: field '{field}' must be {expected}");
        JsonLine Section(string field) => new($"{envPath} ({field})", 1, json[field] as JsonObject ?? throw Bad(field, "an object"));

        if (env.String("format") != Format) throw Bad("format", $"\"{Format}\"");
        if (env.Int("version") != FormatVersion) throw new InvalidDataException($"{envPath}: field 'version' is {env.Int("version")}, this build reads version {FormatVersion}");
        string name = env.String("name");

        var tok = Section("tokenizer");
        string tokenizerType = tok.String("type");
        ITokenizer tokenizer = tokenizerType switch
        {
            "word" => WordTokenizer.Load(Path.Combine(directory, tok.String("file"))),
            "hf" => HfTokenizer.Load(Path.Combine(directory, tok.String("file"))),
            _ => throw Bad("tokenizer.type", "\"word\" or \"hf\""),
        };
        int vocabSize = tok.Int("vocab_size");
        if (tokenizerType == "word" ? vocabSize != tokenizer.VocabSize : vocabSize < tokenizer.VocabSize)
            throw Bad("tokenizer.vocab_size", tokenizerType == "word" ? $"{tokenizer.VocabSize} (the tokenizer file's size)" : $"at least the tokenizer's {tokenizer.VocabSize} ids");
        var eosIds = tok.Array("eos_ids").Select(n => n is JsonValue v && v.TryGetValue<int>(out var id) ? id : throw Bad("tokenizer.eos_ids", "an array of integers")).ToList();
        if (eosIds.Count == 0 || eosIds.Any(id => id < 0 || id >= vocabSize)) throw Bad("tokenizer.eos_ids", $"non-empty, each in 0..{vocabSize - 1}");
        int padId = tok.Int("pad_id");
        if (padId < 0 || padId >= vocabSize) throw Bad("tokenizer.pad_id", $"in 0..{vocabSize - 1}");

        var defaults = ReadOptions(envPath, Section("reward"), Section("options"));

        string normPath = Path.Combine(directory, env.String("normalizers"));
        var normJson = JsonFile.ReadObject(normPath);
        var normalizers = new Dictionary<NormalizerKind, RewardNormalizer>();
        foreach (var kind in Enum.GetValues<NormalizerKind>())
        {
            string key = RewardNormalizer.KindName(kind);
            var obj = normJson[key] as JsonObject ?? throw new InvalidDataException($"{normPath}: missing normalizer '{key}' (a missing normalizer must not silently disable normalization)");
            normalizers[kind] = RewardNormalizer.FromJson(obj, $"{normPath} ({key})");
        }

        var referenceConfig = CheckModel(directory, env.String("reference"), vocabSize, withHead: false);
        var rewardConfig = CheckModel(directory, env.String("reward_model"), vocabSize, withHead: true);

        var prompts = Jsonl.Read(Path.Combine(directory, env.String("prompts")), FormatVersion, l =>
        {
            string text = l.String("text"), id = l.String("id");
            var tokens = tokenizer.Encode(text);
            // An empty prompt would be found only at a reset's prefill, after the episodes had started: refuse it here.
            if (tokens.Length == 0) throw l.Error($"prompt '{id}': field 'text' encodes to no tokens (a prompt needs at least one)");
            return new BundlePrompt(id, l.String("split"), text, tokens);
        });
        if (prompts.Count == 0) throw new InvalidDataException($"{Path.Combine(directory, env.String("prompts"))}: no prompts");
        var judge = json["gold_judge"] is null ? null : JudgeRegistry.Load(env.String("gold_judge"), directory);
        return new EnvBundle(directory, name, defaults, tokenizer, vocabSize, eosIds, padId, prompts, normalizers, referenceConfig, rewardConfig, judge,
            json["rm"] as JsonObject ?? new JsonObject());
    }

    // The default options from env.json's "reward" and "options" sections, through the options codec; every key the
    // writer writes is required (c_ent only for a segment reading), so a truncated file is never read as defaults.
    private static EnvOptions ReadOptions(string envPath, JsonLine reward, JsonLine options)
    {
        var text = new Dictionary<string, string>();
        var field = new Dictionary<string, string>();
        void Read(string section, JsonObject json, IReadOnlyCollection<string> required, Func<string, bool> allowed)
        {
            foreach (var (key, node) in json)
            {
                if (!allowed(key)) throw new InvalidDataException($"{envPath}: field '{section}.{key}' is not an option here (known: {string.Join(", ", EnvOptionTable.Keys.Where(allowed))})");
                try { if (EnvOptionsJson.Text(key, node) is { } v) text[key] = v; }
                catch (EnvOptionException e) { throw new InvalidDataException($"{envPath}: field '{section}.{key}': {e.Message}", e); }
                field[key] = $"{section}.{key}";
            }
            foreach (var key in required)
                if (!text.ContainsKey(key) && !(key == "c_ent" && !"segment".Equals(text.GetValueOrDefault("mode"), StringComparison.OrdinalIgnoreCase)))
                    throw new InvalidDataException($"{envPath}: field '{section}.{key}' is required ({EnvOptionTable.Find(key)!.Accepts})");
        }
        Read("reward", reward.Object, RewardKeys, RewardKeys.Contains);
        Read("options", options.Object, OptionKeys, key => EnvOptionTable.Find(key) is not null && !RewardKeys.Contains(key));
        try { return EnvOptionsCodec.Decode(text, new EnvOptions()); }
        catch (EnvOptionException e)
        {
            throw new InvalidDataException($"{envPath}: field '{field.GetValueOrDefault(e.Key, e.Key)}': {e.Message}", e);
        }
    }

    // Config valid, vocabulary matches, weights' header lists exactly the expected tensor names with the right shapes.
    private static TransformerConfig CheckModel(string directory, string sub, int vocabSize, bool withHead)
    {
        string dir = Path.Combine(directory, sub);
        var config = ModelCheckpoint.ReadConfig(dir);
        string configPath = ModelCheckpoint.ConfigPath(dir);
        if (config.VocabSize != vocabSize)
            throw new InvalidDataException($"{configPath}: field 'vocab_size' is {config.VocabSize} but the bundle's tokenizer has {vocabSize} tokens");
        ModelCheckpoint.CheckWeights(dir, config, withHead);
        return config;
    }
}
