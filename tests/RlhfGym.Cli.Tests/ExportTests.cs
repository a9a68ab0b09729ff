using System.Text.Json.Nodes;
using RlhfGym.Env.Rewards;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Cli.Tests;

/// <summary>`rlhfgym export --hf`: the checkpoint it writes gives, under an independent numpy implementation of the
/// Hugging Face Llama architecture (clients/python/tests/llama_numpy.py), the logits TorchSharp computes.</summary>
public class ExportTests
{
    private static readonly string NumpyReference = RepositoryRoot.File("clients", "python", "tests", "llama_numpy.py");

    private static double MaxDifferenceFromNumpy(CausalTransformer model, string hfDir, long[] tokens)
    {
        double[,] ours;
        using (no_grad())
        using (var logits = model.Logits(model.Forward(tensor(tokens).unsqueeze(0))).squeeze(0).to(float64))
        {
            var flat = logits.data<double>().ToArray();
            int vocab = (int)logits.shape[1];
            ours = new double[tokens.Length, vocab];
            for (int t = 0; t < tokens.Length; t++) for (int v = 0; v < vocab; v++) ours[t, v] = flat[t * vocab + v];
        }
        var python = ProcessRunner.Run("/usr/bin/python3", [NumpyReference, hfDir, .. tokens.Select(t => t.ToString())], TimeSpan.FromMinutes(2));
        Assert.True(python.ExitCode == 0, python.Describe());
        var rows = JsonNode.Parse(python.StdOut)!.AsArray();
        double worst = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < ours.GetLength(1); v++)
                worst = Math.Max(worst, Math.Abs(ours[t, v] - (double)rows[t]![v]!));
        return worst;
    }

    [Fact]
    public void A_grouped_query_untied_model_exports_as_llama_with_the_same_logits()
    {
        using var dir = new TempDir();
        random.manual_seed(3);
        var config = new TransformerConfig { VocabSize = 61, DModel = 32, NLayers = 2, NHeads = 4, NKvHeads = 2, DFf = 80, MaxSeqLen = 32, TiedEmbeddings = false, RopeTheta = 500 };
        using var model = new CausalTransformer(config);
        using (no_grad()) foreach (var p in model.parameters()) p.add_(randn_like(p) * 0.05); // norms away from 1
        model.eval();
        ModelCheckpoint.Save(dir.File("model"), model);
        var r = CliRunner.Run("export", "--hf", "--model", dir.File("model"), "--out", dir.File("hf"), "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        Assert.Equal("llama", (string?)r.LastJson()["model_type"]);
        var hfConfig = JsonNode.Parse(File.ReadAllText(dir.File("hf/config.json")))!;
        Assert.Equal("LlamaForCausalLM", (string?)hfConfig["architectures"]![0]);
        Assert.Equal(2, (int)hfConfig["num_key_value_heads"]!);
        double worst = MaxDifferenceFromNumpy(model, dir.File("hf"), [3, 17, 5, 42, 8, 1, 60, 0]);
        Assert.True(worst < 1e-4, $"logits differ by {worst}");

        // --out exists: refused unless --force; the first export is untouched.
        var again = CliRunner.Run("export", "--hf", "--model", dir.File("model"), "--out", dir.File("hf"), "--json");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("--force", (string?)again.LastJson()["error"]);
        Assert.Equal(0, CliRunner.Run("export", "--hf", "--model", dir.File("model"), "--out", dir.File("hf"), "--force").ExitCode);
        Assert.Empty(Directory.GetDirectories(dir.Path, "hf.tmp-*"));
    }

    [Fact]
    public void A_bundles_reference_and_reward_models_export_with_its_token_ids()
    {
        using var dir = new TempDir();
        string bundle = TestBundles.SegmentBundle;
        var r = CliRunner.Run("export", "--hf", "--env", bundle, "--model", "reference", "--out", dir.File("sft"), "--json");
        Assert.True(r.ExitCode == 0, r.StdErr);
        var env = Env.Bundles.EnvBundle.Load(bundle);
        var config = JsonNode.Parse(File.ReadAllText(dir.File("sft/config.json")))!;
        Assert.Equal(env.PadId, (int)config["pad_token_id"]!);
        Assert.Equal(env.EosIds[0], (int)config["eos_token_id"]!);
        var (reference, _) = ModelCheckpoint.Load(Path.Combine(bundle, "reference"));
        using (reference)
        {
            reference.eval();
            double worst = MaxDifferenceFromNumpy(reference, dir.File("sft"), [env.EosIds[0], 5, 9, 11, 4, 7]);
            Assert.True(worst < 1e-4, $"logits differ by {worst}");
        }
        var rm = CliRunner.Run("export", "--hf", "--model", Path.Combine(bundle, "reward"), "--out", dir.File("rm"), "--json");
        Assert.True(rm.ExitCode == 0, rm.StdErr);
        var rmConfig = JsonNode.Parse(File.ReadAllText(dir.File("rm/config.json")))!;
        Assert.Equal("LlamaForSequenceClassification", (string?)rmConfig["architectures"]![0]);
        Assert.Equal(env.PadId, (int)rmConfig["pad_token_id"]!); // found from the bundle the model sits in
        Assert.Equal(1, (int)rmConfig["num_labels"]!);
    }

    [Theory]
    [InlineData("--model|reference|--out|OUT|--hf", "--env")]
    [InlineData("--model|MODEL|--out|OUT", "--hf")]
    [InlineData("--model|MISSING|--out|OUT|--hf", "MISSING")]
    [InlineData("--model|GPTISH|--out|OUT|--hf", "no Hugging Face family")]
    public void Bad_requests_are_clear_errors(string args, string expected)
    {
        using var dir = new TempDir();
        var config = new TransformerConfig { VocabSize = 20, DModel = 16, NLayers = 1, NHeads = 2, NKvHeads = 2, DFf = 32, MaxSeqLen = 16 };
        using (var model = new CausalTransformer(config)) ModelCheckpoint.Save(dir.File("model"), model);
        using (var odd = new CausalTransformer(config with { Positions = PositionKind.Learned })) ModelCheckpoint.Save(dir.File("gptish"), odd);
        var argv = args.Split('|').Select(a => a switch
        {
            "MODEL" => dir.File("model"),
            "GPTISH" => dir.File("gptish"),
            "MISSING" => dir.File("missing"),
            "OUT" => dir.File("out"),
            _ => a,
        }).Append("--json").ToArray();
        var r = CliRunner.Run(["export", .. argv]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(expected.Replace("MISSING", dir.File("missing")), (string?)r.LastJson()["error"]);
        Assert.False(Directory.Exists(dir.File("out")));
    }
}
