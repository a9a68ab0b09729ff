using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.HuggingFace;

/// <summary>A model read from a Hugging Face checkpoint directory.</summary>
public sealed record HfModel(CausalTransformer Model, ScalarHead? Head, HfFamily Family) : IDisposable
{
    public void Dispose()
    {
        Model.Dispose();
        Head?.Dispose();
    }
}

/// <summary>
/// Hugging Face checkpoints: config.json with model.safetensors, or shards listed in model.safetensors.index.json.
/// Loading checks every tensor's name and shape against the model before any is used, and never returns a
/// half-loaded model: a missing, unknown or misshapen tensor is a <see cref="CheckpointFormatException"/> naming
/// the file and the tensor. Saving writes the same layout, so transformers' from_pretrained reads it back.
/// </summary>
public static class HfCheckpoint
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors", IndexFile = "model.safetensors.index.json";

    /// <param name="withHead">Load a reward model: the body plus "score.weight" (…ForSequenceClassification).</param>
    /// <param name="maxSeqLen">Cap on the context length (rotary tables and KV caches are sized by it).</param>
    public static HfModel Load(string directory, Device? device = null, bool withHead = false, int maxSeqLen = 8192)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: checkpoint directory not found");
        string configPath = Path.Combine(directory, ConfigFile);
        var (family, config) = HfConfig.Parse(JsonFile.ReadObject(configPath), configPath, maxSeqLen);
        var files = WeightFiles(directory);
        var entries = files.SelectMany(f => SafeTensors.ReadHeader(f).Entries.Select(e => (File: f, Entry: e))).ToList();
        if (!config.TiedEmbeddings && !entries.Any(e => e.Entry.Name == "lm_head.weight"))
        {
            // A reward model has no LM head; its logits are never used, so tie them rather than invent weights.
            if (withHead) config = config with { TiedEmbeddings = true };
            else throw new CheckpointFormatException(files[0], "lm_head.weight", "missing, and tie_word_embeddings is false");
        }

        var model = new CausalTransformer(config, device);
        var head = withHead ? new ScalarHead(config.DModel, device) : null;
        try
        {
            var targets = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
            if (head is not null) targets[HfWeightMap.ScoreWeight] = head.score.weight!;
            var filled = new HashSet<string>();
            using (no_grad())
            {
                foreach (var file in files)
                {
                    var tensors = SafeTensors.Load(file);
                    using var views = NewDisposeScope(); // the transposed, split and narrowed views made while mapping
                    try
                    {
                        foreach (var (hfName, value) in tensors)
                        {
                            if (HfWeightMap.IsIgnored(hfName)) continue;
                            if (hfName == HfWeightMap.ScoreWeight && head is null) continue; // a reward model read as a plain LM
                            WeightCheck.Usable(file, hfName, value);
                            foreach (var (name, part) in Mapped(file, family, config, hfName, value))
                            {
                                if (!targets.TryGetValue(name, out var target))
                                    throw new CheckpointFormatException(file, hfName, $"has no place in a {HfFamilies.ModelType(family)} model of this config");
                                if (!part.shape.SequenceEqual(target.shape))
                                    throw new CheckpointFormatException(file, hfName, $"shape [{string.Join(", ", value.shape)}] does not fit [{string.Join(", ", target.shape)}] from {configPath}");
                                target.copy_(part);
                                filled.Add(name);
                            }
                        }
                    }
                    finally
                    {
                        foreach (var t in tensors.Values) t.Dispose();
                    }
                }
            }
            var missing = targets.Keys.Where(k => !filled.Contains(k)).ToList();
            if (missing.Count > 0)
                throw new CheckpointFormatException(files[0], missing[0], $"missing: {missing.Count} parameters were not in the checkpoint ({string.Join(", ", missing.Take(4))}{(missing.Count > 4 ? ", …" : "")})");
            return new HfModel(model, head, family);
        }
        catch
        {
            model.Dispose();
            head?.Dispose();
            throw;
        }
    }

    /// <summary>Write config.json and model.safetensors in the family's Hugging Face layout, each atomically.</summary>
    /// <param name="tokenIds">pad/bos/eos ids for config.json. transformers needs pad_token_id to score a batch with a
    /// …ForSequenceClassification reward model (it finds each row's last token by it).</param>
    // A tensor's parts in RlhfGym's layout; a tensor that cannot be split as the config says (a fused q/k/v or gate/up
    // of the wrong size) is an error naming the file and tensor, not a raw index or libtorch error.
    private static List<(string Name, Tensor Part)> Mapped(string file, HfFamily family, TransformerConfig config, string hfName, Tensor value)
    {
        try { return HfWeightMap.FromHf(family, config, hfName, value).ToList(); }
        catch (Exception e) when (e is not CheckpointFormatException)
        {
            throw new CheckpointFormatException(file, hfName, $"shape [{string.Join(", ", value.shape)}] cannot be mapped for this config: {e.Message}", e);
        }
    }

    public static void Save(string directory, HfFamily family, CausalTransformer model, ScalarHead? head = null, HfTokenIds? tokenIds = null)
    {
        tokenIds?.Validate(model.Config.VocabSize);
        if (family == HfFamily.Gpt2 != (model.Config.Positions == PositionKind.Learned))
            throw new ArgumentException($"a {HfFamilies.ModelType(family)} checkpoint needs {(family == HfFamily.Gpt2 ? "learned" : "rotary")} positions");
        Directory.CreateDirectory(directory);
        var ours = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        if (head is not null) ours[HfWeightMap.ScoreWeight] = head.score.weight!;
        using var scope = NewDisposeScope();
        var tensors = HfWeightMap.ToHf(family, model.Config, ours).Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Value)).ToList();
        SafeTensors.Save(Path.Combine(directory, WeightsFile), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        // A shard index left by an earlier save into this folder would win over the file just written (WeightFiles).
        File.Delete(Path.Combine(directory, IndexFile));
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile),
            HfConfig.ToJson(family, model.Config, head is not null, tokenIds).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The weight files: the shards of the index, or the single file.</summary>
    public static IReadOnlyList<string> WeightFiles(string directory)
    {
        string index = Path.Combine(directory, IndexFile), single = Path.Combine(directory, WeightsFile);
        if (File.Exists(index))
        {
            var map = JsonFile.ReadObject(index)["weight_map"] as JsonObject
                ?? throw new CheckpointFormatException(index, null, "no 'weight_map' object");
            var files = map.Select(kv => (string?)kv.Value ?? throw new CheckpointFormatException(index, kv.Key, "shard file name is not a string"))
                .Distinct().Select(f => Path.Combine(directory, f)).ToList();
            foreach (var f in files)
                if (!File.Exists(f)) throw new CheckpointFormatException(index, null, $"lists shard {Path.GetFileName(f)}, which is not in {directory}");
            return files;
        }
        if (File.Exists(single)) return [single];
        throw new FileNotFoundException($"{directory}: neither {WeightsFile} nor {IndexFile} is there", single);
    }
}
