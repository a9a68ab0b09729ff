using System.Buffers.Binary;
using System.Text;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class SafeTensorsTests
{
    [Fact]
    public void Round_trip_is_bit_exact_for_every_float_dtype()
    {
        using var dir = new TempDir();
        random.manual_seed(2);
        var source = new Dictionary<string, Tensor>
        {
            ["a.f32"] = randn(3, 5),
            ["b.f16"] = randn(7).to_type(ScalarType.Float16),
            ["c.bf16"] = randn(2, 2, 3).to_type(ScalarType.BFloat16),
            ["d.i64"] = randint(-1000, 1000, [4], ScalarType.Int64),
            ["e.empty"] = zeros(0, 3),
        };
        string path = dir.File("t.safetensors");
        SafeTensors.Save(path, source, new Dictionary<string, string> { ["format"] = "pt" });
        var loaded = SafeTensors.Load(path);
        Assert.Equal(source.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, t) in source)
        {
            Assert.Equal(t.dtype, loaded[name].dtype);
            Assert.Equal(t.shape, loaded[name].shape);
            Assert.Equal(t.bytes.ToArray(), loaded[name].bytes.ToArray());
        }
        var (_, metadata, dataStart) = SafeTensors.ReadHeader(path);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(0, dataStart % 8);
    }

    [Fact]
    public void Model_checkpoint_round_trip_gives_identical_logits()
    {
        using var dir = new TempDir();
        using var model = TinyModels.Create(TinyModels.Config(nKvHeads: 2, tied: false));
        using var head = new ScalarHead(32);
        ModelCheckpoint.Save(dir.Path, model, head);
        var (loaded, loadedHead) = ModelCheckpoint.Load(dir.Path, withHead: true);
        using (loaded)
        using (loadedHead)
        using (no_grad())
        {
            loaded.eval();
            var tokens = tensor(new long[] { 1, 2, 3, 4, 5 }).unsqueeze(0);
            Assert.Equal(0f, (model.Logits(model.Forward(tokens)) - loaded.Logits(loaded.Forward(tokens))).abs().max().item<float>());
            Assert.Equal(0f, (head.forward(model.Forward(tokens)) - loadedHead!.forward(loaded.Forward(tokens))).abs().max().item<float>());
        }
    }

    private static string WriteValid(TempDir dir)
    {
        string path = dir.File("v.safetensors");
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["w"] = ones(4, 4), ["v"] = ones(2) });
        return path;
    }

    private static void WriteRaw(string path, string headerJson, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(headerJson);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public void Truncated_file_is_rejected_naming_the_file_and_tensor()
    {
        using var dir = new TempDir();
        string path = WriteValid(dir);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^8]);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.NotNull(ex.TensorName);
        Assert.Contains("outside", ex.Message);
    }

    [Fact]
    public void Garbage_and_short_files_are_rejected()
    {
        using var dir = new TempDir();
        string path = dir.File("g.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("too short", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0xff, 64).ToArray());
        Assert.Contains("header claims", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        WriteRaw(path, "{not json", 0);
        Assert.Contains("not valid JSON", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        Assert.Contains("not found", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(dir.File("missing"))).Message);
    }

    [Fact]
    public void Header_that_lies_about_sizes_is_rejected()
    {
        using var dir = new TempDir();
        string path = dir.File("l.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,32]}}""", 64);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path));
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("needs 64", ex.Message);
        WriteRaw(path, """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24);
        Assert.Contains("overlap", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}""", 0);
        Assert.Contains("shape[0]", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        // 2^62 F32 elements: 2^64 bytes, which wrapped to 0 and matched empty offsets.
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}""", 0);
        Assert.Contains("more bytes than fit 64 bits", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}""", 0);
        Assert.Contains("more elements than fit 64 bits", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
        // A key given twice is malformed JSON, named like any other.
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4);
        Assert.Contains("header is not valid JSON", Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path)).Message);
    }

    [Fact]
    public void Unknown_dtype_is_rejected()
    {
        using var dir = new TempDir();
        string path = dir.File("d.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 2);
        var ex = Assert.Throws<CheckpointFormatException>(() => SafeTensors.Load(path));
        Assert.Equal("w", ex.TensorName);
        Assert.Contains("unknown dtype 'F8_E4M3'", ex.Message);
    }

    [Fact]
    public void Shape_that_does_not_match_the_config_is_rejected_and_no_model_is_returned()
    {
        using var dir = new TempDir();
        using (var model = TinyModels.Create(TinyModels.Config()))
            ModelCheckpoint.Save(dir.Path, model);
        // Claim a larger vocabulary in the config than the weights hold.
        string configPath = Path.Combine(dir.Path, ModelCheckpoint.ConfigFile);
        File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"vocab_size\": 50", "\"vocab_size\": 60"));
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path));
        Assert.Equal("embed.weight", ex.TensorName);
        Assert.Contains("does not match", ex.Message);
    }

    [Fact]
    public void Missing_or_unexpected_tensors_and_bad_configs_are_named()
    {
        using var dir = new TempDir();
        using (var model = TinyModels.Create(TinyModels.Config()))
            ModelCheckpoint.Save(dir.Path, model);
        var ex = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path, withHead: true));
        Assert.Equal("score.weight", ex.TensorName);
        Assert.Contains("missing", ex.Message);

        string configPath = Path.Combine(dir.Path, ModelCheckpoint.ConfigFile);
        string good = File.ReadAllText(configPath);
        File.WriteAllText(configPath, good.Replace("\"n_heads\": 4", "\"n_heads\": 3"));
        Assert.Contains("n_heads", Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path)).Message);
        File.WriteAllText(configPath, good.Replace("\"d_ff\": 64,", ""));
        Assert.Contains("missing field 'd_ff'", Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path)).Message);
        // An enum given as a number is no kind at all, not a silent one ("positions": 2 would load with no positions).
        File.WriteAllText(configPath, good.Replace("\"positions\": \"Rotary\"", "\"positions\": 2"));
        Assert.Contains("positions", Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path)).Message);
    }

    [Fact]
    public void Weights_that_are_not_finite_floats_are_refused_naming_the_tensor()
    {
        using var dir = new TempDir();
        using (var model = TinyModels.Create(TinyModels.Config()))
            ModelCheckpoint.Save(dir.Path, model);
        string weights = ModelCheckpoint.WeightsPath(dir.Path);
        var all = SafeTensors.Load(weights);
        var name = all.Keys.First(k => k.EndsWith("norm.weight", StringComparison.Ordinal));
        var nan = all.ToDictionary(kv => kv.Key, kv => kv.Value);
        nan[name] = full(all[name].shape, float.NaN);
        SafeTensors.Save(weights, nan);
        var e = Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path));
        Assert.Equal(name, e.TensorName);
        Assert.Contains("NaN or infinite", e.Message);
        var ints = all.ToDictionary(kv => kv.Key, kv => kv.Value);
        ints[name] = ones(all[name].shape, ScalarType.Int32);
        SafeTensors.Save(weights, ints);
        Assert.Contains("must be floating point", Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(dir.Path)).Message);
    }

    [Fact]
    public void Checkpoints_from_before_the_hugging_face_fields_still_load()
    {
        using var dir = new TempDir();
        using (var model = TinyModels.Create(TinyModels.Config()))
            ModelCheckpoint.Save(dir.Path, model);
        string configPath = Path.Combine(dir.Path, ModelCheckpoint.ConfigFile);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        foreach (var field in new[] { "qkv_bias", "positions", "rope_scaling" }) Assert.True(json.Remove(field), field);
        File.WriteAllText(configPath, json.ToJsonString());
        var (loaded, _) = ModelCheckpoint.Load(dir.Path);
        using (loaded) Assert.Equal(TinyModels.Config(), loaded.Config);
    }

    [Fact]
    public void Learned_positions_and_rope_scaling_round_trip_in_our_format()
    {
        using var dir = new TempDir();
        var config = TinyModels.Config(mlp: MlpKind.GeluTanh, norm: NormKind.LayerNorm, bias: true) with { Positions = PositionKind.Learned };
        using var model = TinyModels.Create(config);
        ModelCheckpoint.Save(dir.Path, model);
        var (loaded, _) = ModelCheckpoint.Load(dir.Path);
        using (loaded) Assert.Equal(config, loaded.Config);
        var scaled = TinyModels.Config() with { RopeScaling = new RopeScaling { Type = "llama3", Factor = 8, OriginalMaxPositions = 16 }, QkvBias = true };
        using var other = TinyModels.Create(scaled);
        ModelCheckpoint.Save(dir.Path, other);
        var (again, _) = ModelCheckpoint.Load(dir.Path);
        using (again) Assert.Equal(scaled, again.Config);
    }

    [Fact]
    public void A_failed_save_leaves_the_previous_file_intact()
    {
        using var dir = new TempDir();
        string path = WriteValid(dir);
        var before = File.ReadAllBytes(path);
        Assert.ThrowsAny<Exception>(() => AtomicFile.Write(path, s => { s.Write(new byte[10]); throw new IOException("disk full"); }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}
