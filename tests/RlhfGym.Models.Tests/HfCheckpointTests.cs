using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.HuggingFace;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

/// <summary>
/// Hugging Face checkpoints: the fixtures under Fixtures/hf were written by make_fixtures.py with reference logits
/// from an independent numpy implementation of each architecture.
/// </summary>
public class HfCheckpointTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf", name);

    private static (long[][] Ids, float[][][] Logits, float[][]? Scores) Expected(string name)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture(name), "expected.json")))!;
        var ids = json["input_ids"]!.AsArray().Select(r => r!.AsArray().Select(v => (long)v!).ToArray()).ToArray();
        var logits = json["logits"]!.AsArray().Select(r => r!.AsArray().Select(p => p!.AsArray().Select(v => (float)(double)v!).ToArray()).ToArray()).ToArray();
        var scores = json["scores"]?.AsArray().Select(r => r!.AsArray().Select(v => (float)(double)v!).ToArray()).ToArray();
        return (ids, logits, scores);
    }

    private static float MaxDiff(Tensor actual, float[][] expected) =>
        (actual - tensor(expected.SelectMany(r => r).ToArray()).view(actual.shape)).abs().max().item<float>();

    [Theory]
    [InlineData("gpt2", HfFamily.Gpt2)]
    [InlineData("llama", HfFamily.Llama)]
    [InlineData("phi3", HfFamily.Phi3)]
    public void Loaded_models_reproduce_the_reference_logits(string name, HfFamily family)
    {
        var (ids, logits, _) = Expected(name);
        using var hf = HfCheckpoint.Load(Fixture(name));
        Assert.Equal(family, hf.Family);
        using var _ = no_grad();
        for (int r = 0; r < ids.Length; r++)
        {
            var output = hf.Model.Logits(hf.Model.Forward(tensor(ids[r]).unsqueeze(0))).squeeze(0);
            Assert.True(MaxDiff(output, logits[r]) <= 1e-4, $"{name} row {r}: max |Δ| {MaxDiff(output, logits[r])}");
        }
    }

    [Fact]
    public void A_reward_model_reads_its_score_head()
    {
        var (ids, logits, scores) = Expected("qwen2-rm");
        using var hf = HfCheckpoint.Load(Fixture("qwen2-rm"), withHead: true);
        Assert.Equal(HfFamily.Qwen2, hf.Family);
        Assert.True(hf.Model.Config.QkvBias);
        using var _ = no_grad();
        var hidden = hf.Model.Forward(tensor(ids[0]).unsqueeze(0)).squeeze(0);
        Assert.True(MaxDiff(hf.Model.Logits(hidden), logits[0]) <= 1e-4);
        Assert.True(MaxDiff(hf.Head!.forward(hidden), [scores![0]]) <= 1e-4);
    }

    [Fact]
    public void Learned_positions_decode_through_the_cache_like_the_full_forward()
    {
        var (ids, _, _) = Expected("gpt2");
        using var hf = HfCheckpoint.Load(Fixture("gpt2"));
        using var _ = no_grad();
        var full = hf.Model.Logits(hf.Model.Forward(tensor(ids[0]).unsqueeze(0))).squeeze(0);
        using var cache = hf.Model.NewCache(1, 16);
        hf.Model.Prefill(tensor(ids[0].Take(3).ToArray()).unsqueeze(0), [3], cache);
        for (int t = 3; t < ids[0].Length; t++)
        {
            var step = hf.Model.Logits(hf.Model.DecodeStep(tensor(new[] { ids[0][t] }), cache)).squeeze(0);
            Assert.True((step - full[t]).abs().max().item<float>() <= 1e-4, $"position {t}");
        }
    }

    [Theory]
    [InlineData("gpt2", false)]
    [InlineData("llama", false)]
    [InlineData("phi3", false)]
    [InlineData("qwen2-rm", true)]
    public void Saving_writes_the_same_layout_and_loads_back_identically(string name, bool rewardModel)
    {
        using var dir = new TempDir();
        using var original = HfCheckpoint.Load(Fixture(name), withHead: rewardModel);
        HfCheckpoint.Save(dir.Path, original.Family, original.Model, original.Head);
        var originalNames = SafeTensors.ReadHeader(Path.Combine(Fixture(name), "model.safetensors")).Entries.Select(e => e.Name)
            .Where(n => !HfWeightMap.IsIgnored(n)).Order();
        var savedNames = SafeTensors.ReadHeader(Path.Combine(dir.Path, "model.safetensors")).Entries.Select(e => e.Name).Order();
        Assert.Equal(originalNames.Select(n => n.StartsWith("transformer.") || !name.StartsWith("gpt2") ? n : "transformer." + n), savedNames);
        using var reloaded = HfCheckpoint.Load(dir.Path, withHead: rewardModel);
        Assert.Equal(original.Model.Config, reloaded.Model.Config);
        using var _ = no_grad();
        var ids = tensor(new long[] { 3, 1, 4, 1, 5, 9, 2, 6 }).unsqueeze(0);
        Assert.Equal(0f, (original.Model.Forward(ids) - reloaded.Model.Forward(ids)).abs().max().item<float>());
    }

    [Fact]
    public void A_saved_reward_model_carries_its_special_token_ids_and_bad_ids_are_refused()
    {
        using var dir = new TempDir();
        using var original = HfCheckpoint.Load(Fixture("qwen2-rm"), withHead: true);
        int vocab = original.Model.Config.VocabSize;
        HfCheckpoint.Save(dir.Path, original.Family, original.Model, original.Head, new HfTokenIds(Pad: 0, Eos: [1, 2]));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!.AsObject();
        Assert.Equal(0, (int)config["pad_token_id"]!);
        Assert.Equal([1, 2], config["eos_token_id"]!.AsArray().Select(n => (int)n!));
        Assert.False(config.ContainsKey("bos_token_id"));
        using (var reloaded = HfCheckpoint.Load(dir.Path, withHead: true)) Assert.Equal(original.Model.Config, reloaded.Model.Config);

        using var other = new TempDir();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            HfCheckpoint.Save(other.Path, original.Family, original.Model, original.Head, new HfTokenIds(Pad: vocab)));
        Assert.Contains("pad_token_id", e.Message);
        Assert.False(File.Exists(Path.Combine(other.Path, "config.json")));
    }

    [Fact]
    public void A_context_cap_below_the_checkpoints_trims_learned_positions()
    {
        var (ids, logits, _) = Expected("gpt2");
        using var hf = HfCheckpoint.Load(Fixture("gpt2"), maxSeqLen: 16);
        Assert.Equal(16, hf.Model.Config.MaxSeqLen);
        using var _ = no_grad();
        Assert.True(MaxDiff(hf.Model.Logits(hf.Model.Forward(tensor(ids[0]).unsqueeze(0))).squeeze(0), logits[0]) <= 1e-4);
    }

    [Fact]
    public void Llama3_rope_scaling_needs_all_its_fields()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("llama"), "model.safetensors"), dir.File("model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture("llama"), "config.json")))!.AsObject();
        config["rope_scaling"]!.AsObject().Remove("original_max_position_embeddings");
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("original_max_position_embeddings", Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(dir.Path)).Message);
    }

    [Fact]
    public void Sharded_checkpoints_load_through_their_index()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("llama"), "config.json"), dir.File("config.json"));
        var all = SafeTensors.Load(Path.Combine(Fixture("llama"), "model.safetensors"));
        var names = all.Keys.ToList();
        var first = names.Take(names.Count / 2).ToList();
        SafeTensors.Save(dir.File("model-00001-of-00002.safetensors"), first.Select(n => new KeyValuePair<string, Tensor>(n, all[n])));
        SafeTensors.Save(dir.File("model-00002-of-00002.safetensors"), names.Skip(first.Count).Select(n => new KeyValuePair<string, Tensor>(n, all[n])));
        var map = new JsonObject();
        foreach (var n in names) map[n] = first.Contains(n) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
        File.WriteAllText(dir.File(HfCheckpoint.IndexFile), new JsonObject { ["weight_map"] = map }.ToJsonString());
        var (ids, logits, _) = Expected("llama");
        using var hf = HfCheckpoint.Load(dir.Path);
        using var _ = no_grad();
        Assert.True(MaxDiff(hf.Model.Logits(hf.Model.Forward(tensor(ids[1]).unsqueeze(0))).squeeze(0), logits[1]) <= 1e-4);

        File.Delete(dir.File("model-00002-of-00002.safetensors"));
        Assert.Contains("model-00002-of-00002.safetensors", Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path)).Message);
    }

    [Fact]
    public void A_fused_tensor_whose_size_disagrees_with_the_config_is_refused_not_cut_in_the_wrong_places()
    {
        using var dir = new TempDir();
        foreach (var f in Directory.GetFiles(Fixture("phi3"))) File.Copy(f, dir.File(Path.GetFileName(f)));
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        // One key/value head instead of two: q 16 + k 4 + v 4 rows of the 32-row qkv_proj, each part of a shape that fits.
        config["num_key_value_heads"] = 1;
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        var e = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Equal("model.layers.0.self_attn.qkv_proj.weight", e.TensorName);
        Assert.Contains("expected shape [24, 16]", e.Message);
        Assert.Contains("got [32, 16]", e.Message);
    }

    [Fact]
    public void Config_fields_of_the_wrong_type_are_named()
    {
        using var dir = new TempDir();
        foreach (var f in Directory.GetFiles(Fixture("llama"))) File.Copy(f, dir.File(Path.GetFileName(f)));
        var good = File.ReadAllText(dir.File("config.json"));
        var config = JsonNode.Parse(good)!.AsObject();
        config["vocab_size"] = "64";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("field 'vocab_size' must be an integer, got \"64\"", Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(dir.Path)).Message);
        config = JsonNode.Parse(good)!.AsObject();
        config["num_attention_heads"] = 0;
        config["head_dim"] = 4;
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("num_attention_heads", Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(dir.Path)).Message);
        // A key given twice is malformed JSON, with the file named.
        File.WriteAllText(dir.File("config.json"), good.TrimEnd().TrimEnd('}') + ", \"model_type\": \"gpt2\"}");
        var twice = Assert.Throws<InvalidDataException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Contains("config.json", twice.Message);
        Assert.Contains("not valid JSON", twice.Message);
    }

    [Fact]
    public void Weights_that_are_not_finite_floats_are_refused_naming_the_file_and_tensor()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("llama"), "config.json"), dir.File("config.json"));
        var all = SafeTensors.Load(Path.Combine(Fixture("llama"), "model.safetensors"));
        var bad = all.ToDictionary(kv => kv.Key, kv => kv.Value);
        bad["model.norm.weight"] = full(all["model.norm.weight"].shape, float.PositiveInfinity);
        SafeTensors.Save(dir.File("model.safetensors"), bad);
        var e = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Equal("model.norm.weight", e.TensorName);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void Bad_checkpoints_name_the_file_and_the_tensor()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("llama"), "config.json"), dir.File("config.json"));
        var all = SafeTensors.Load(Path.Combine(Fixture("llama"), "model.safetensors"));

        // A missing tensor.
        SafeTensors.Save(dir.File("model.safetensors"), all.Where(kv => kv.Key != "model.layers.1.mlp.up_proj.weight"));
        var missing = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Contains("blocks.1.mlp.up_proj.weight", missing.Message);
        Assert.Contains("model.safetensors", missing.Message);

        // A tensor whose shape does not fit the config.
        var wrong = all.ToDictionary(kv => kv.Key, kv => kv.Value);
        wrong["model.layers.0.self_attn.k_proj.weight"] = zeros(16, 16);
        SafeTensors.Save(dir.File("model.safetensors"), wrong);
        var shape = Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Equal("model.layers.0.self_attn.k_proj.weight", shape.TensorName);
        Assert.Contains("[16, 16]", shape.Message);

        // A tensor with no place in the model.
        var extra = all.ToDictionary(kv => kv.Key, kv => kv.Value);
        extra["model.layers.0.self_attn.mystery.weight"] = zeros(2);
        SafeTensors.Save(dir.File("model.safetensors"), extra);
        Assert.Equal("model.layers.0.self_attn.mystery.weight", Assert.Throws<CheckpointFormatException>(() => HfCheckpoint.Load(dir.Path)).TensorName);

        // An architecture the loader does not know, and one it cannot reproduce exactly.
        SafeTensors.Save(dir.File("model.safetensors"), all);
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!.AsObject();
        config["model_type"] = "mamba";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("mamba", Assert.Throws<NotSupportedException>(() => HfCheckpoint.Load(dir.Path)).Message);
        config["model_type"] = "llama";
        config["hidden_act"] = "gelu";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        Assert.Contains("hidden_act", Assert.Throws<NotSupportedException>(() => HfCheckpoint.Load(dir.Path)).Message);

        // No weights at all, and no directory.
        config["hidden_act"] = "silu";
        File.WriteAllText(dir.File("config.json"), config.ToJsonString());
        File.Delete(dir.File("model.safetensors"));
        Assert.Throws<FileNotFoundException>(() => HfCheckpoint.Load(dir.Path));
        Assert.Throws<DirectoryNotFoundException>(() => HfCheckpoint.Load(dir.File("nope")));
    }
}
