using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Common;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.HuggingFace;
using RlhfGym.Models.Tokenization;
using static TorchSharp.torch;

namespace RlhfGym.Env.Builders;

/// <summary>What `rlhfgym bundle from-hf` needs.</summary>
public sealed record HfBundleRequest
{
    /// <summary>The frozen reference LM (and policy start): a Hugging Face causal-LM directory.</summary>
    public required string ReferenceDir { get; init; }
    /// <summary>The reward model: a causal LM body with a scalar "score.weight" head (…ForSequenceClassification).</summary>
    public required string RewardDir { get; init; }
    /// <summary>JSONL, one prompt a line: {"prompt": "…"} with optional "id" and "split" (train, validation, test).</summary>
    public required string PromptsFile { get; init; }
    public required string OutDir { get; init; }
    /// <summary>Where tokenizer.json / tokenizer.model live (default: the reference directory).</summary>
    public string? TokenizerDir { get; init; }
    public string? Name { get; init; }
    /// <summary>auto (from tokenizer_config.json's chat_template) or plain, chatml, llama3, mistral, phi3.</summary>
    public string ChatTemplate { get; init; } = "auto";
    public RewardReading Reading { get; init; } = RewardReading.Segment();
    /// <summary>A fitted normalizer (`rlhfgym normalizer fit`). Without it or <see cref="PreferencesFile"/> the bundle's
    /// normalizers are identities.</summary>
    public string? NormalizerFile { get; init; }
    /// <summary>The RM's preference pairs, JSONL {"prompt", "chosen", "rejected"}: every normalizer kind is fitted on them
    /// (<see cref="PreferenceNormalizerFit"/>) and location becomes the default, as in the paper.</summary>
    public string? PreferencesFile { get; init; }
    public int MaxNewTokens { get; init; } = 128;
    /// <summary>Context the models are loaded for (rotary tables and KV caches are sized by it).</summary>
    public int MaxSeqLen { get; init; } = 2048;
}

/// <summary>
/// An env bundle from Hugging Face checkpoints: the models are converted to this project's checkpoint format (so the
/// env loads them like any bundle), the tokenizer files are copied, and prompts are wrapped in the chat template.
/// Everything is checked before anything is written: vocabularies agree, prompts fit the context, EOS ids exist.
/// </summary>
public static class HfBundleBuilder
{
    public static EnvBundle Build(HfBundleRequest r, Action<string>? progress = null)
    {
        if (r.MaxNewTokens < 1) throw new ArgumentOutOfRangeException(nameof(r.MaxNewTokens), r.MaxNewTokens, "max_new_tokens must be >= 1");
        if (r.NormalizerFile is not null && r.PreferencesFile is not null)
            throw new ArgumentException("give a fitted normalizer (--normalizer) or preference pairs to fit one on (--preferences), not both");
        if (r.PreferencesFile is { } prefs && !File.Exists(prefs)) throw new FileNotFoundException($"{prefs}: preference file not found", prefs);
        string tokenizerDir = r.TokenizerDir ?? r.ReferenceDir;
        var tokenizer = HfTokenizer.Load(tokenizerDir);
        var template = r.ChatTemplate == "auto" ? ChatTemplate.Detect(ReadChatTemplate(tokenizerDir)) : ChatTemplate.Parse(r.ChatTemplate);
        var eosIds = new List<int> { tokenizer.EosId };
        if (template.EndOfTurn is { } endOfTurn)
        {
            if (!tokenizer.SpecialTokens.TryGetValue(endOfTurn, out int endId))
                throw new InvalidDataException($"{tokenizerDir}: the {template.Name} template's end-of-turn token {endOfTurn} is not a special token of this tokenizer");
            if (!eosIds.Contains(endId)) eosIds.Add(endId);
        }

        var prompts = ReadPrompts(r.PromptsFile, template, tokenizer);
        progress?.Invoke($"from-hf: {prompts.Count} prompts, chat template {template.Name}, EOS ids [{string.Join(", ", eosIds)}]");
        using var reference = HfCheckpoint.Load(r.ReferenceDir, CPU, withHead: false, r.MaxSeqLen);
        var rewardHf = HfCheckpoint.Load(r.RewardDir, CPU, withHead: true, r.MaxSeqLen);
        using var reward = new RewardModel(rewardHf.Model, rewardHf.Head!);
        int vocab = reference.Model.Config.VocabSize;
        if (reward.Transformer.Config.VocabSize != vocab)
            throw new InvalidDataException($"{Path.Combine(r.RewardDir, HfCheckpoint.ConfigFile)}: vocab_size {reward.Transformer.Config.VocabSize} differs from the reference's {vocab}: the two models must share a tokenizer");
        if (tokenizer.VocabSize > vocab)
            throw new InvalidDataException($"{tokenizerDir}: the tokenizer has {tokenizer.VocabSize} ids but the models only {vocab}");
        int context = Math.Min(reference.Model.Config.MaxSeqLen, reward.Transformer.Config.MaxSeqLen);
        var longest = prompts.MaxBy(p => p.Tokens.Length)!;
        if (longest.Tokens.Length + r.MaxNewTokens + 1 > context)
            throw new ArgumentException($"{r.PromptsFile}: prompt '{longest.Id}' has {longest.Tokens.Length} tokens; with max_new_tokens {r.MaxNewTokens} it does not fit the models' context of {context}");

        var normalizers = Enum.GetValues<NormalizerKind>().ToDictionary(k => k, k => RewardNormalizer.Identity with { Kind = k });
        var defaultNormalizer = NormalizerKind.None;
        JsonObject? fitInfo = null;
        if (r.NormalizerFile is { } normalizerFile)
        {
            var fitted = RewardNormalizer.Load(normalizerFile);
            normalizers[fitted.Kind] = fitted;
            defaultNormalizer = fitted.Kind;
        }
        else if (r.PreferencesFile is { } preferences)
        {
            var fit = PreferenceNormalizerFit.Fit(preferences, template, tokenizer, eosIds, r.MaxNewTokens, context, reference.Model, reward, r.Reading, progress);
            foreach (var (kind, report) in fit.Fits) normalizers[kind] = report.Normalizer;
            defaultNormalizer = NormalizerKind.Location;
            var location = fit.Fits[NormalizerKind.Location];
            fitInfo = new JsonObject
            {
                ["preferences"] = Path.GetFullPath(preferences),
                ["pairs"] = fit.Pairs,
                ["skipped_too_long"] = fit.Skipped,
                ["segments"] = location.Segments,
                ["location_buckets"] = location.Buckets,
                ["sigma_clamped_fraction"] = location.ClampedFraction,
            };
        }
        var defaults = new EnvOptions { Reading = r.Reading, Normalizer = defaultNormalizer, MaxNewTokens = r.MaxNewTokens };
        var tokenizerFiles = new[] { HfTokenizer.TokenizerJson, HfTokenizer.SentencePieceModel, HfTokenizer.TokenizerConfig, "special_tokens_map.json" }
            .Select(f => Path.Combine(tokenizerDir, f)).Where(File.Exists).ToList();
        var info = new JsonObject
        {
            ["source"] = "huggingface",
            ["reference"] = Path.GetFullPath(r.ReferenceDir),
            ["reward"] = Path.GetFullPath(r.RewardDir),
            ["reference_family"] = HfFamilies.ModelType(reference.Family),
            ["reward_family"] = HfFamilies.ModelType(rewardHf.Family),
            ["chat_template"] = template.Name,
            ["normalizer_fitted"] = r.NormalizerFile is not null || fitInfo is not null,
        };
        if (fitInfo is not null) info["normalizer_fit"] = fitInfo;
        string name = r.Name ?? Path.GetFileName(Path.GetFullPath(r.OutDir).TrimEnd(Path.DirectorySeparatorChar));
        progress?.Invoke($"from-hf: writing {r.OutDir}");
        EnvBundle.WriteHf(r.OutDir, name, defaults, tokenizerFiles, vocab, eosIds, tokenizer.PadId, prompts, normalizers, reference.Model, reward, info);
        return EnvBundle.Load(r.OutDir);
    }

    private static string? ReadChatTemplate(string tokenizerDir)
    {
        string path = Path.Combine(tokenizerDir, HfTokenizer.TokenizerConfig);
        return File.Exists(path) ? JsonFile.ReadObject(path)["chat_template"] switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonArray named => (string?)named.FirstOrDefault(t => (string?)t?["name"] == "default")?["template"],
            _ => null,
        } : null;
    }

    private static List<BundlePrompt> ReadPrompts(string path, ChatTemplate template, ITokenizer tokenizer)
    {
        var ids = new HashSet<string>();
        var prompts = Jsonl.Read(path, version: null, line =>
        {
            string prompt = line.OptionalString("prompt") ?? line.OptionalString("text") ?? throw line.Error("no \"prompt\" string");
            string split = line.OptionalString("split") ?? "train";
            if (split is not ("train" or "validation" or "test")) throw line.Error($"split must be train, validation or test, got '{split}'");
            string text = template.Format(prompt);
            var tokens = tokenizer.Encode(text);
            if (tokens.Length == 0) throw line.Error("the prompt encodes to no tokens");
            // Ids are often numbers in users' files.
            string id = line.Object["id"] is JsonValue v && v.TryGetValue<long>(out long number)
                ? number.ToString(System.Globalization.CultureInfo.InvariantCulture) : line.OptionalString("id") ?? $"line-{line.LineNo}";
            if (!ids.Add(id)) throw line.Error($"prompt id '{id}' is used twice");
            return new BundlePrompt(id, split, text, tokens);
        });
        if (prompts.Count == 0) throw new InvalidDataException($"{path}: no prompts");
        return prompts;
    }
}
