using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Checkpoints;

/// <summary>
/// A model directory in RlhfGym's own format: rlhfgym_config.json (the <see cref="TransformerConfig"/>) and
/// rlhfgym_model.safetensors (the transformer's tensors under RlhfGym's names, plus "score.weight" when it carries a
/// scalar head). Loading validates the config, every tensor's name, shape and bytes, and returns a model only when all
/// of it fits. The names are not Hugging Face's because the contents are not: `rlhfgym export --hf` writes those.
/// </summary>
public static class ModelCheckpoint
{
    public const string ConfigFile = "rlhfgym_config.json";
    public const string WeightsFile = "rlhfgym_model.safetensors";

    /// <summary>
    /// The names directories written before 0.2 used (Hugging Face's, with RlhfGym contents). Still read, so existing
    /// caches and checkpoints keep loading; never written.
    /// </summary>
    public const string LegacyConfigFile = "config.json", LegacyWeightsFile = "model.safetensors";

    /// <summary>Whether a directory holds an RlhfGym model (under the current names or the legacy ones).</summary>
    public static bool Exists(string directory) =>
        File.Exists(Path.Combine(directory, ConfigFile)) || File.Exists(Path.Combine(directory, LegacyConfigFile));

    /// <summary>The config file a directory's model is read from: the current name, else the legacy one if present.</summary>
    public static string ConfigPath(string directory) => Path.Combine(directory, UsesLegacyNames(directory) ? LegacyConfigFile : ConfigFile);

    /// <summary>The weights file that goes with <see cref="ConfigPath"/> (the pair is never mixed).</summary>
    public static string WeightsPath(string directory) => Path.Combine(directory, UsesLegacyNames(directory) ? LegacyWeightsFile : WeightsFile);

    private static bool UsesLegacyNames(string directory) =>
        !File.Exists(Path.Combine(directory, ConfigFile)) && File.Exists(Path.Combine(directory, LegacyConfigFile));

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(allowIntegerValues: false) }, // "positions": 2 is no kind, not a silent one
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public static void Save(string directory, CausalTransformer model, ScalarHead? head = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(directory);
        var tensors = model.state_dict().ToList();
        if (head is not null) tensors.AddRange(head.state_dict());
        SafeTensors.Save(Path.Combine(directory, WeightsFile), tensors, metadata);
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile), JsonSerializer.Serialize(model.Config, JsonOptions));
    }

    /// <summary>Config fields older checkpoints lack: no q/k/v bias, rotary positions, no rope scaling.</summary>
    private static readonly HashSet<string> FieldsWithOlderDefaults = ["qkv_bias", "positions", "rope_scaling"];

    public static TransformerConfig ReadConfig(string directory)
    {
        string path = ConfigPath(directory);
        if (!File.Exists(path)) throw new CheckpointFormatException(path, null, "file not found");
        JsonObject json;
        try
        {
            json = JsonFile.Parse(File.ReadAllText(path)) as JsonObject ?? throw new CheckpointFormatException(path, null, "not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"not valid JSON: {e.Message}", e);
        }
        // Every field must be present: a silently defaulted shape would load the wrong model. The fields added for
        // Hugging Face models may be absent from older checkpoints, where they meant what their defaults mean.
        foreach (var prop in typeof(TransformerConfig).GetProperties())
        {
            var name = prop.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name;
            if (name is not null && !json.ContainsKey(name) && !FieldsWithOlderDefaults.Contains(name))
                throw new CheckpointFormatException(path, null, $"missing field '{name}'");
        }
        TransformerConfig config;
        try
        {
            config = json.Deserialize<TransformerConfig>(JsonOptions)!;
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"bad field: {e.Message}", e);
        }
        try
        {
            config.Validate(path);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointFormatException(path, null, e.Message, e);
        }
        return config;
    }

    /// <summary>Load a transformer (and its scalar head when <paramref name="withHead"/>) onto a device.</summary>
    public static (CausalTransformer Model, ScalarHead? Head) Load(string directory, Device? device = null, bool withHead = false)
    {
        var config = ReadConfig(directory);
        string path = WeightsPath(directory);
        var model = new CausalTransformer(config, device);
        var head = withHead ? new ScalarHead(config.DModel, device) : null;
        try
        {
            var targets = model.state_dict();
            if (head is not null) foreach (var kv in head.state_dict()) targets[kv.Key] = kv.Value;
            CheckNamesAndShapes(path, SafeTensors.ReadHeader(path).Entries, targets.ToDictionary(kv => kv.Key, kv => kv.Value.shape));
            var loaded = SafeTensors.Load(path);
            try
            {
                using var _ = no_grad();
                foreach (var (name, target) in targets) target.copy_(WeightCheck.Usable(path, name, loaded[name]));
            }
            finally
            {
                foreach (var t in loaded.Values) t.Dispose();
            }
            return (model, head);
        }
        catch
        {
            model.Dispose();
            head?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Load a model for a known vocabulary (an env's actions, a world's tokens) in eval mode; a mismatch is an error
    /// naming the config file, and no model is returned.
    /// </summary>
    public static CausalTransformer LoadFor(string directory, int vocabSize, string vocabularyOwner, Device? device = null)
    {
        var (model, _) = Load(directory, device);
        if (model.Config.VocabSize != vocabSize)
        {
            model.Dispose();
            throw new InvalidDataException($"{ConfigPath(directory)}: vocab_size {model.Config.VocabSize} does not match the {vocabSize} tokens of {vocabularyOwner}");
        }
        model.eval();
        return model;
    }

    /// <summary>Check a model directory's weights fit its config without reading the tensor data.</summary>
    public static void CheckWeights(string directory, TransformerConfig config, bool withHead)
    {
        string path = WeightsPath(directory);
        var entries = SafeTensors.ReadHeader(path).Entries;
        using var model = new CausalTransformer(config);
        var expected = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        if (withHead) expected["score.weight"] = [1, config.DModel];
        CheckNamesAndShapes(path, entries, expected);
    }

    private static void CheckNamesAndShapes(string path, IReadOnlyList<SafeTensorEntry> entries, Dictionary<string, long[]> expected)
    {
        var found = entries.ToDictionary(e => e.Name);
        foreach (var name in found.Keys)
            if (!expected.ContainsKey(name)) throw new CheckpointFormatException(path, name, "not a tensor of this model (unexpected name)");
        foreach (var (name, shape) in expected)
        {
            if (!found.TryGetValue(name, out var entry)) throw new CheckpointFormatException(path, name, "missing from the file");
            if (!entry.Shape.SequenceEqual(shape))
                throw new CheckpointFormatException(path, name, $"shape [{string.Join(", ", entry.Shape)}] does not match the config's [{string.Join(", ", shape)}]");
        }
    }
}
