using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Tokenization;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Env.Tests;

public class EnvBundleTests
{
    /// <summary>The whole pipeline at toy size: world → SFT (1 epoch) → segment RM (1 epoch) → bundle.</summary>
    private static (TempDir Dir, string Bundle, PhraseWorldRewardModel.Outcome Outcome) Build()
    {
        var dir = new TempDir();
        string world = Path.Combine(dir.Path, "world"), sft = Path.Combine(dir.Path, "sft"), bundle = Path.Combine(dir.Path, "bundle");
        WorldStore.Build(world, 3, TestWorlds.Small with { SftPerTrainPrompt = 4, PairsPerTrainPrompt = 4, PairsPerValidationPrompt = 2 });
        PhraseWorldSft.Train(world, sft, new SftOptions { Epochs = 1 }, CPU).Model.Dispose();
        var outcome = PhraseWorldRewardModel.TrainBundle(world, sft, RewardReading.Segment(), new RewardTrainingOptions { Epochs = 1 },
            bundle, "Test-Segment-v0", CPU);
        return (dir, bundle, outcome);
    }

    [Fact]
    public void A_trained_bundle_loads_with_every_option_and_normalizer()
    {
        var (dir, bundle, outcome) = Build();
        using (dir)
        {
            Assert.NotNull(outcome.Report["pairwise_accuracy"]);
            Assert.NotNull(outcome.Report["segment_gold_correlation"]);
            var b = EnvBundle.Load(bundle);
            Assert.Equal("Test-Segment-v0", b.Name);
            Assert.Equal(RewardMode.Segment, b.Defaults.Reading.Mode);
            Assert.Equal(2.0, b.Defaults.Reading.CEnt);
            Assert.Equal(4, b.Normalizers.Count);
            Assert.Equal(NormalizerKind.Location, b.Normalizers[NormalizerKind.Location].Kind);
            Assert.IsType<PhraseWorldJudge>(b.Judge);
            Assert.Equal([b.Tokenizer.EosId], b.EosIds);
            // env.json says what built the bundle: the machine record `rlhfgym info` prints (MKL branch included).
            var builtOn = JsonNode.Parse(File.ReadAllText(Path.Combine(bundle, EnvBundle.EnvFile)))!["built_on"]!;
            Assert.Equal(RlhfGym.Models.RuntimeInfo.Machine(CPU).ToJsonString(), builtOn.ToJsonString());
            using var reference = b.LoadReference(CPU);
            using var rm = b.LoadRewardModel(CPU);
            Assert.Equal(b.Tokenizer.VocabSize, rm.Transformer.Config.VocabSize);
            // The bundled reward model is the trained one: it reproduces the reported pairwise accuracy.
            var world = PhraseWorldPlugin.WorldOf(b);
            var pairs = WorldStore.LoadPairs(bundle.Replace("bundle", "world"), world).Where(p => p.Split == "validation").ToList();
            var planned = PhraseWorldRewardModel.Plan(world, pairs, b.Defaults.Reading, reference);
            Assert.Equal((double)outcome.Report["pairwise_accuracy"]!, RewardModelTrainer.PairwiseAccuracy(rm, planned, world.Tokenizer.PadId), 3);
        }
    }

    [Fact]
    public void Bundles_written_under_the_old_hugging_face_names_still_load_and_new_ones_use_none()
    {
        var (dir, bundle, _) = Build();
        using (dir)
        {
            // What this build writes: no file under a Hugging Face name, since none holds Hugging Face contents.
            var names = Directory.GetFiles(bundle, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToHashSet();
            Assert.DoesNotContain("config.json", names);
            Assert.DoesNotContain("model.safetensors", names);
            Assert.DoesNotContain("tokenizer.json", names);
            var current = EnvBundle.Load(bundle);
            using var currentReference = current.LoadReference(CPU);

            // A bundle from before the rename: the same files under the old names, env.json pointing at tokenizer.json.
            foreach (var sub in new[] { EnvBundle.ReferenceDir, EnvBundle.RewardDir })
            {
                File.Move(Path.Combine(bundle, sub, ModelCheckpoint.ConfigFile), Path.Combine(bundle, sub, ModelCheckpoint.LegacyConfigFile));
                File.Move(Path.Combine(bundle, sub, ModelCheckpoint.WeightsFile), Path.Combine(bundle, sub, ModelCheckpoint.LegacyWeightsFile));
            }
            File.Move(Path.Combine(bundle, WordTokenizer.FileName), Path.Combine(bundle, WordTokenizer.LegacyFileName));
            string env = Path.Combine(bundle, EnvBundle.EnvFile);
            File.WriteAllText(env, File.ReadAllText(env).Replace($"\"{WordTokenizer.FileName}\"", $"\"{WordTokenizer.LegacyFileName}\""));
            var old = EnvBundle.Load(bundle);
            Assert.Equal(current.Tokenizer.VocabSize, old.Tokenizer.VocabSize);
            Assert.IsType<PhraseWorldJudge>(old.Judge); // the judge's world reads the legacy tokenizer name too
            using var oldReference = old.LoadReference(CPU);
            using var rm = old.LoadRewardModel(CPU);
            using var ids = tensor(new long[] { 3, 7, 9 }).unsqueeze(0);
            Assert.True(currentReference.Forward(ids).allclose(oldReference.Forward(ids)));

            // A directory holding both pairs reads the current one, never a mix.
            string reference = Path.Combine(bundle, EnvBundle.ReferenceDir);
            Assert.EndsWith(ModelCheckpoint.LegacyWeightsFile, ModelCheckpoint.WeightsPath(reference));
            File.Copy(Path.Combine(reference, ModelCheckpoint.LegacyConfigFile), Path.Combine(reference, ModelCheckpoint.ConfigFile));
            Assert.Equal(Path.Combine(reference, ModelCheckpoint.WeightsFile), ModelCheckpoint.WeightsPath(reference));
            Assert.Contains(ModelCheckpoint.WeightsFile, Assert.Throws<CheckpointFormatException>(() => ModelCheckpoint.Load(reference)).Message);
        }
    }

    [Fact]
    public void Broken_bundles_name_the_file_and_field()
    {
        var (dir, bundle, _) = Build();
        using (dir)
        {
            string env = Path.Combine(bundle, EnvBundle.EnvFile), norms = Path.Combine(bundle, EnvBundle.NormalizersFile);
            string envText = File.ReadAllText(env), normText = File.ReadAllText(norms);

            File.WriteAllText(env, envText.Replace("\"interpolation\": \"even\"", "\"interpolation\": \"cubic\""));
            var ex = Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle));
            Assert.Contains(EnvBundle.EnvFile, ex.Message);
            Assert.Contains("options.interpolation", ex.Message);

            File.WriteAllText(env, envText.Replace("\"mode\": \"segment\"", "\"mode\": \"dense\""));
            Assert.Contains("bandit, token or segment", Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle)).Message);

            File.WriteAllText(env, envText.Replace("\"version\": 1,", "\"version\": 2,"));
            Assert.Contains("version", Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle)).Message);
            File.WriteAllText(env, envText);

            var n = JsonNode.Parse(normText)!.AsObject();
            n.Remove("last");
            File.WriteAllText(norms, n.ToJsonString());
            ex = Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle));
            Assert.Contains(EnvBundle.NormalizersFile, ex.Message);
            Assert.Contains("'last'", ex.Message);
            File.WriteAllText(norms, normText);

            // A prompt whose text encodes to no tokens (it could not be prefilled): its file, line and id.
            string prompts = Path.Combine(bundle, EnvBundle.PromptsFile);
            var promptLines = File.ReadAllLines(prompts);
            var second = JsonNode.Parse(promptLines[1])!.AsObject();
            second["text"] = "";
            File.WriteAllLines(prompts, [promptLines[0], second.ToJsonString(), .. promptLines[2..]]);
            ex = Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle));
            Assert.Contains($"{EnvBundle.PromptsFile}:2", ex.Message);
            Assert.Contains($"prompt '{(string)second["id"]!}'", ex.Message);
            Assert.Contains("no tokens", ex.Message);
            File.WriteAllLines(prompts, promptLines);

            string rewardConfig = Path.Combine(bundle, EnvBundle.RewardDir, ModelCheckpoint.ConfigFile);
            string rc = File.ReadAllText(rewardConfig);
            File.WriteAllText(rewardConfig, System.Text.RegularExpressions.Regex.Replace(rc, "\"vocab_size\": \\d+", "\"vocab_size\": 9"));
            ex = Assert.Throws<InvalidDataException>(() => EnvBundle.Load(bundle));
            Assert.Contains(rewardConfig, ex.Message);
            Assert.Contains("vocab_size", ex.Message);
            File.WriteAllText(rewardConfig, rc);

            // A reward directory without the scalar head (e.g. the reference copied over it).
            File.Copy(Path.Combine(bundle, EnvBundle.ReferenceDir, ModelCheckpoint.WeightsFile), Path.Combine(bundle, EnvBundle.RewardDir, ModelCheckpoint.WeightsFile), true);
            var ce = Assert.Throws<CheckpointFormatException>(() => EnvBundle.Load(bundle));
            Assert.Equal("score.weight", ce.TensorName);

            File.Delete(env);
            Assert.Contains("not a complete env bundle", Assert.Throws<FileNotFoundException>(() => EnvBundle.Load(bundle)).Message);
        }
    }
}
