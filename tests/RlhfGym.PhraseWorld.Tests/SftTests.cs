using RlhfGym.Env.Training;
using RlhfGym.Models.Checkpoints;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.PhraseWorld.Tests;

public class SftTests
{
    [Fact]
    public void Sft_lowers_the_response_loss_and_saves_a_loadable_model()
    {
        using var worldDir = new TempDir();
        using var modelDir = new TempDir();
        var world = WorldStore.Build(worldDir.Path, 2, TestWorlds.Small with { SftPerTrainPrompt = 6 }).World;
        var examples = WorldStore.LoadSft(worldDir.Path, world);
        var validation = examples.Where(e => e.Split == "validation").Select(e => (world.Prompt(e.PromptId).Tokens, e.Response)).ToList();

        random.manual_seed(3);
        using (var untrained = new Models.Transformer.CausalTransformer(PhraseWorldModels.Config(world.Tokenizer.VocabSize)))
        {
            var (before, _) = SftTrainer.Evaluate(untrained, validation, world.Tokenizer.PadId, 64);
            var (model, result) = PhraseWorldSft.Train(worldDir.Path, modelDir.Path, new SftOptions { Epochs = 2, Seed = 3 }, CPU);
            using (model)
            {
                Assert.True(result.ValidationLoss < before - 1.0, $"validation loss {result.ValidationLoss} vs untrained {before}");
                var samples = PhraseWorldSft.Sample(model, world, world.Split("test").Take(4).ToList(), seed: 1, maxNewTokens: 8);
                Assert.Equal(4, samples.Length);
                Assert.All(samples, s => Assert.InRange(s.Length, 1, 8));
            }
        }
        using var reloaded = PhraseWorldSft.Load(modelDir.Path, world, CPU);
        Assert.Equal(world.Tokenizer.VocabSize, reloaded.Config.VocabSize);
    }

    [Fact]
    public void A_model_for_another_vocabulary_is_rejected_by_name()
    {
        using var modelDir = new TempDir();
        var world = TestWorlds.Seed1;
        using (var model = new Models.Transformer.CausalTransformer(PhraseWorldModels.Config(world.Tokenizer.VocabSize + 5)))
            ModelCheckpoint.Save(modelDir.Path, model);
        var ex = Assert.Throws<InvalidDataException>(() => PhraseWorldSft.Load(modelDir.Path, world, CPU));
        Assert.Contains("vocab_size", ex.Message);
        Assert.Contains(ModelCheckpoint.ConfigFile, ex.Message);
    }

    [Fact]
    public void Generation_stops_at_eos_and_respects_the_budget()
    {
        var world = TestWorlds.Seed1;
        random.manual_seed(1);
        using var model = new Models.Transformer.CausalTransformer(PhraseWorldModels.Config(world.Tokenizer.VocabSize));
        model.eval();
        var prompts = world.Split("test").Take(3).ToList();
        var a = PhraseWorldSft.Sample(model, world, prompts, seed: 9, maxNewTokens: 12);
        var b = PhraseWorldSft.Sample(model, world, prompts, seed: 9, maxNewTokens: 12);
        Assert.Equal(a, b);
        foreach (var r in a)
        {
            Assert.InRange(r.Length, 1, 12);
            int eos = Array.IndexOf(r, world.EosId);
            Assert.True(eos < 0 || eos == r.Length - 1);
        }
    }
}
