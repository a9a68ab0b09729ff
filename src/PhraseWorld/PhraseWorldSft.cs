using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Env.Training;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Generation;
using RlhfGym.Models.Tokenization;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.PhraseWorld;

/// <summary>How the SFT model's samples compare with the behaviour it imitates, on the same held-out prompts.</summary>
public sealed record SftFidelity(int Samples, double SftMeanGold, double BehaviourMeanGold, double SftEosRate)
{
    public double Gap => SftMeanGold - BehaviourMeanGold;
}

/// <summary>Trains the PhraseWorld SFT model (the frozen reference LM and every later model's starting point).</summary>
public static class PhraseWorldSft
{
    public const string TokenizerFile = WordTokenizer.FileName;

    public static (CausalTransformer Model, SftResult Result) Train(string worldDir, string outDir, SftOptions options, Device device, Action<string>? progress = null)
    {
        var world = WorldStore.Load(worldDir);
        var examples = WorldStore.LoadSft(worldDir, world);
        var prompts = world.Prompts.ToDictionary(p => p.Id);
        var train = examples.Where(e => e.Split == "train").Select(e => (prompts[e.PromptId].Tokens, e.Response)).ToList();
        var validation = examples.Where(e => e.Split == "validation").Select(e => (prompts[e.PromptId].Tokens, e.Response)).ToList();
        random.manual_seed(options.Seed);
        var model = new CausalTransformer(PhraseWorldModels.Config(world.Tokenizer.VocabSize), device);
        var result = SftTrainer.Train(model, train, validation, world.Tokenizer.PadId, options, progress);
        Save(outDir, model, world, result);
        return (model, result);
    }

    private static void Save(string outDir, CausalTransformer model, World world, SftResult result)
    {
        ModelCheckpoint.Save(outDir, model, metadata: new Dictionary<string, string> { ["kind"] = "sft", ["world_seed"] = world.Seed.ToString() });
        world.Tokenizer.Save(Path.Combine(outDir, TokenizerFile));
        AtomicFile.WriteAllText(Path.Combine(outDir, "sft.json"), JsonSerializer.Serialize(new JsonObject
        {
            ["world_seed"] = world.Seed,
            ["validation_loss"] = result.ValidationLoss,
            ["validation_perplexity"] = result.ValidationPerplexity,
            ["steps"] = result.Steps,
        }, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Load a model directory written by <see cref="Train"/> and check it fits the world's vocabulary.</summary>
    public static CausalTransformer Load(string modelDir, World world, Device device) =>
        ModelCheckpoint.LoadFor(modelDir, world.Tokenizer.VocabSize, "the world's vocabulary", device);

    /// <summary>Sample one response per prompt (prompts may repeat), in batches, from a seeded sampler.</summary>
    public static int[][] Sample(CausalTransformer model, World world, IReadOnlyList<WorldPrompt> prompts, long seed,
        double temperature = 1.0, int batchSize = 256, int maxNewTokens = PhraseWorldModels.MaxNewTokens)
    {
        return TextGenerator.SampleInBatches(model, prompts.Select(p => p.Tokens).ToList(), maxNewTokens, seed, world.EosId, temperature, batchSize);
    }

    /// <summary>Mean gold of SFT samples vs behaviour samples on the same held-out prompts.</summary>
    public static SftFidelity Fidelity(CausalTransformer model, World world, string split, int samplesPerPrompt, long seed)
    {
        var prompts = world.Split(split).SelectMany(p => Enumerable.Repeat(p, samplesPerPrompt)).ToList();
        var judge = new GoldJudge(world);
        var sft = Sample(model, world, prompts, seed);
        var behaviour = new BehaviourPolicy(world);
        var rng = new SeededRandom(seed + 1);
        double sftGold = 0, behaviourGold = 0, eos = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            var verdict = judge.Judge(prompts[i], sft[i]);
            sftGold += verdict.Score;
            eos += verdict.Terminated ? 1 : 0;
            behaviourGold += judge.Judge(prompts[i], behaviour.Sample(prompts[i], rng)).Score;
        }
        return new SftFidelity(prompts.Count, sftGold / prompts.Count, behaviourGold / prompts.Count, eos / prompts.Count);
    }
}
