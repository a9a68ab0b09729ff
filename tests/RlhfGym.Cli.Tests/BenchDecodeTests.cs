using RlhfGym.Benchmarks;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using RlhfGym.Tests;
using static TorchSharp.torch;

namespace RlhfGym.Cli.Tests;

public class BenchDecodeTests
{
    [Fact]
    public void Bench_decode_reports_each_kernel_the_flop_rate_against_the_ceiling_and_the_pytorch_ratio()
    {
        // A small run against the real PyTorch peer: this checks the verb end to end, not how fast anything is.
        var r = CliRunner.Run("bench", "decode", "--d-model", "32", "--layers", "1", "--batch", "4", "--prompt-len", "2", "--steps", "4",
            "--rounds", "1", "--pytorch", "/usr/bin/python3", "--json");
        Assert.True(r.ExitCode == 0, r.Describe());
        var json = r.LastJson();
        Assert.Equal("d32 L1 H4 V470", (string?)json["model"]);
        var kernels = json["kernel_s"]!.AsObject();
        Assert.Equal(["sdpa", "matmul", "reduce"], kernels.Select(p => p.Key));
        Assert.All(kernels, p => Assert.True((double)p.Value! > 0));
        Assert.Equal((double)kernels[(string)json["auto_kernel"]!]!, (double)json["decode_s"]!);
        Assert.True((double)json["achieved_gflops"]! > 0);
        Assert.True((double)json["matmul_ceiling_gflops"]! > 0);
        // The printed rates are rounded to 0.01, so their quotient can differ from the printed fraction by that much over the ceiling.
        double achieved = (double)json["achieved_gflops"]!, ceiling = (double)json["matmul_ceiling_gflops"]!;
        double slack = 0.005 * (1 + achieved / ceiling) / ceiling + 0.0005;
        Assert.InRange((double)json["fraction_of_ceiling"]!, achieved / ceiling - slack, achieved / ceiling + slack);
        var peer = json["pytorch"]!.AsObject();
        Assert.StartsWith("1.", (string?)peer["torch"]); // Debian 12's python3-torch
        Assert.Contains((string)peer["best"]!, peer["kernel_s"]!.AsObject().Select(p => p.Key));
        Assert.True((double)json["rlhfgym_vs_pytorch"]! > 0);
        Assert.Equal((double)json["rlhfgym_vs_pytorch"]!, (double)json["rlhfgym_vs_pytorch_rounds"]!.AsArray().Single()!); // one round: its ratio is the median
        // The peer's own matrix products alone, timed as RlhfGym's ceiling is, and the two ceilings' ratio.
        double peerAchieved = (double)peer["achieved_gflops"]!, peerCeiling = (double)peer["matmul_ceiling_gflops"]!;
        Assert.True(peerAchieved > 0 && peerCeiling > 0, peer.ToJsonString());
        double peerSlack = 0.005 * (1 + peerAchieved / peerCeiling) / peerCeiling + 0.0005;
        Assert.InRange((double)peer["fraction_of_ceiling"]!, peerAchieved / peerCeiling - peerSlack, peerAchieved / peerCeiling + peerSlack);
        Assert.InRange((double)json["matmul_ceiling_vs_pytorch"]!, ceiling / peerCeiling * 0.99 - 0.001, ceiling / peerCeiling * 1.01 + 0.001);
    }

    [Theory]
    [InlineData("--kernels", "flash", "'flash'")]
    [InlineData("--kernels", ",", "at least one")]
    [InlineData("--pytorch", "/nonexistent/python3", "/nonexistent/python3")]
    [InlineData("--pytorch-env", "NOEQUALS", "KEY=VALUE")]
    [InlineData("--heads", "3", "n_heads")]
    [InlineData("--steps", "0", "--steps")]
    public void Bench_decode_names_a_bad_option(string option, string value, string expected)
    {
        var options = new Dictionary<string, string> { ["--d-model"] = "32", ["--layers"] = "1", ["--batch"] = "2", ["--steps"] = "2", ["--rounds"] = "1" };
        if (option == "--pytorch-env") options["--pytorch"] = "/usr/bin/python3";
        options[option] = value;
        var r = CliRunner.Run(["bench", "decode", .. options.SelectMany(p => new[] { p.Key, p.Value }), "--json"]);
        Assert.Equal(1, r.ExitCode);
        string error = (string)r.LastJson()["error"]!;
        Assert.Contains(expected, error);
    }

    [Fact]
    public void The_pytorch_peer_builds_the_same_model_as_rlhfgym_from_its_config_and_weights()
    {
        // The peer is only a fair comparison if it computes the same function: load RlhfGym's weights into it and
        // compare the last decode step's logits with RlhfGym's (grouped-query attention, untied LM head).
        using var dir = new TempDir();
        var config = new TransformerConfig { VocabSize = 40, DModel = 32, NLayers = 2, NHeads = 4, NKvHeads = 2, DFf = 64, MaxSeqLen = 32, TiedEmbeddings = false };
        random.manual_seed(5);
        using var model = new CausalTransformer(config);
        ModelCheckpoint.Save(dir.Path, model);
        const int batch = 3, prompt = 4, steps = 5;
        var tokens = randint(3, config.VocabSize, [batch, prompt + steps], ScalarType.Int64);
        File.WriteAllText(dir.File("tokens.txt"), string.Join(" ", tokens.data<long>().ToArray()));
        string script = dir.File(PyTorchPeer.ScriptName);
        PyTorchPeer.WriteScript(script);

        Tensor expected;
        using (no_grad())
        {
            using var cache = model.NewCache(batch, prompt + steps + 1);
            model.Prefill(tokens.narrow(1, 0, prompt), [], cache);
            expected = model.Logits(model.DecodeStep(tokens.select(1, prompt), cache));
            for (int s = 1; s < steps; s++) expected = model.Logits(model.DecodeStep(tokens.select(1, prompt + s), cache));
        }
        var run = ProcessRunner.Run("/usr/bin/python3", [script, "--config", dir.File(ModelCheckpoint.ConfigFile), "--weights", dir.Path,
            "--tokens", dir.File("tokens.txt"), "--batch", $"{batch}", "--prompt-len", $"{prompt}", "--steps", $"{steps}", "--rounds", "1",
            "--threads", "1", "--dump-logits", dir.File("logits.bin")], TimeSpan.FromMinutes(2));
        Assert.True(run.ExitCode == 0, run.Describe());
        var bytes = File.ReadAllBytes(dir.File("logits.bin"));
        var peer = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        Assert.Equal(batch * config.VocabSize, peer.Length);
        var ours = expected.data<float>().ToArray();
        double diff = ours.Zip(peer, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(diff <= 1e-4, $"max abs logit difference {diff}");
    }
}
