using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Options;
using RlhfGym.Env.Rewards;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Env.Tests;

/// <summary>env.json's default options: written and read through the options codec, in the layout of version 1.</summary>
public class EnvBundleOptionsTests
{
    // A bundle with random tiny models (what is tested is env.json, not the models).
    private static void WriteBundle(string dir, EnvOptions defaults)
    {
        var world = WorldBuilder.Build(4);
        var config = PhraseWorldModels.Config(world.Tokenizer.VocabSize) with { VocabSize = world.Tokenizer.VocabSize, MaxSeqLen = 96, NLayers = 1 };
        random.manual_seed(1);
        using var reference = new CausalTransformer(config);
        using var rm = new RewardModel(new CausalTransformer(config), new ScalarHead(config.DModel));
        var normalizers = Enum.GetValues<NormalizerKind>().ToDictionary(k => k, k => RewardNormalizer.Identity with { Kind = k });
        var prompts = world.Prompts.Select(p => new BundlePrompt(p.Id, p.Split, p.Text, p.Tokens)).ToList();
        EnvBundle.Write(dir, "Options-v0", defaults, world.Tokenizer, prompts, normalizers, reference, rm, PhraseWorldPlugin.BundleJudge(world), new JsonObject());
    }

    [Fact]
    public void Bundle_defaults_round_trip_through_env_json_in_the_version_1_layout()
    {
        using var dir = new TempDir();
        string bundle = dir.File("segment"), bandit = dir.File("bandit");
        var segment = new EnvOptions
        {
            Reading = RewardReading.Segment(1.5),
            Normalizer = NormalizerKind.Global,
            Interpolation = Interpolation.Repeat,
            Delivery = RewardDelivery.Online,
            MaxNewTokens = 17,
            MissingEos = MissingEosRule.Penalty,
            MissingEosPenalty = 0.25,
        };
        WriteBundle(bundle, segment);
        Assert.Equal(segment, EnvBundle.Load(bundle).Defaults);
        // The same bytes as before the codec: same keys, same order, numbers as JSON numbers, c_ent null for bandit.
        string text = File.ReadAllText(Path.Combine(bundle, EnvBundle.EnvFile));
        Assert.Contains("""
              "reward": {
                "mode": "segment",
                "c_ent": 1.5
              },
              "options": {
                "normalizer": "global",
                "interpolation": "repeat",
                "delivery": "online",
                "max_new_tokens": 17,
                "missing_eos": "penalty",
                "missing_eos_penalty": 0.25
              },
            """.Replace("\r\n", "\n"), text);

        WriteBundle(bandit, new EnvOptions { Reading = RewardReading.Bandit });
        string banditText = File.ReadAllText(Path.Combine(bandit, EnvBundle.EnvFile));
        Assert.Contains("\"c_ent\": null", banditText);
        Assert.Contains("\"missing_eos_penalty\": 0\n", banditText);
        Assert.Equal(new EnvOptions { Reading = RewardReading.Bandit }, EnvBundle.Load(bandit).Defaults);

        // Per-env options a bundle leaves out may be stored under "options" too, in any form the codec reads.
        var json = JsonNode.Parse(text)!.AsObject();
        json["options"]!["dense_as_bandit"] = "TRUE";
        json["options"]!["prompt_split"] = "validation";
        File.WriteAllText(Path.Combine(bundle, EnvBundle.EnvFile), json.ToJsonString());
        Assert.Equal(segment with { DenseAsBandit = true, PromptSplit = "validation" }, EnvBundle.Load(bundle).Defaults);

        // Bad values and missing or unknown fields name the file and the field.
        void Refused(Action<JsonObject> edit, params string[] says)
        {
            var broken = JsonNode.Parse(text)!.AsObject();
            edit(broken);
            File.WriteAllText(Path.Combine(bundle, EnvBundle.EnvFile), broken.ToJsonString());
            var e = Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle));
            Assert.Contains(EnvBundle.EnvFile, e.Message);
            foreach (var s in says) Assert.Contains(s, e.Message);
        }
        Refused(j => j["options"]!["dense_as_bandit"] = "yes", "options.dense_as_bandit", "true or false");
        Refused(j => j["options"]!["max_new_tokens"] = 0, "options.max_new_tokens", "> 0");
        Refused(j => j["options"]!.AsObject().Remove("delivery"), "options.delivery", "required");
        Refused(j => j["reward"]!["c_ent"] = null, "reward.c_ent", "required");
        Refused(j => j["options"]!["normaliser"] = "global", "options.normaliser", "normalizer");
        Refused(j => j["options"]!["mode"] = "token", "options.mode");
    }
}
