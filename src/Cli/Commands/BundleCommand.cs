using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Builders;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym bundle from-hf`: an env bundle around Hugging Face checkpoints (docs/models.md).</summary>
public static class BundleCommand
{
    public static Command Create()
    {
        var reference = new Option<string>("--reference") { Description = "Hugging Face causal-LM directory: the frozen reference LM and the policy's start", Required = true };
        var reward = new Option<string>("--reward") { Description = "Hugging Face reward-model directory (a causal LM body with score.weight)", Required = true };
        var prompts = new Option<string>("--prompts") { Description = "JSONL, one {\"prompt\": …, \"id\"?, \"split\"?} per line", Required = true };
        var outDir = new Option<string>("--out") { Description = "bundle directory to write", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "directory with tokenizer.json or tokenizer.model (default: --reference)" };
        var name = new Option<string?>("--name") { Description = "env id (default: the --out directory's name)" };
        var chat = new Option<string>("--chat-template") { Description = "auto, plain, chatml, llama3, mistral or phi3", DefaultValueFactory = _ => "auto" };
        var mode = new Option<string>("--mode") { Description = "how the reward model is read: segment, token or bandit", DefaultValueFactory = _ => "segment" };
        var cEnt = new Option<double>("--c-ent") { Description = "entropy threshold for segment mode", DefaultValueFactory = _ => RewardReading.PaperCEnt };
        var normalizer = new Option<string?>("--normalizer") { Description = "a fitted normalizer JSON (`rlhfgym normalizer fit`); default: none" };
        var preferences = new Option<string?>("--preferences") { Description = "the RM's preference pairs, JSONL {\"prompt\", \"chosen\", \"rejected\"}: fit every normalizer on them (location becomes the default)" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "new-token budget per episode", DefaultValueFactory = _ => 128 };
        var maxSeq = new Option<int>("--max-seq-len") { Description = "context the models are loaded for", DefaultValueFactory = _ => 2048 };
        var fromHf = new Command("from-hf", "build an env bundle from Hugging Face reference and reward checkpoints")
        {
            reference, reward, prompts, outDir, tokenizer, name, chat, mode, cEnt, normalizer, preferences, maxNew, maxSeq,
        };
        VerbRunner.Set(fromHf, (parse, progress) =>
        {
            var bundle = HfBundleBuilder.Build(new HfBundleRequest
            {
                ReferenceDir = parse.GetValue(reference)!,
                RewardDir = parse.GetValue(reward)!,
                PromptsFile = parse.GetValue(prompts)!,
                OutDir = parse.GetValue(outDir)!,
                TokenizerDir = parse.GetValue(tokenizer),
                Name = parse.GetValue(name),
                ChatTemplate = parse.GetValue(chat)!,
                Reading = RewardReading.Parse(parse.GetValue(mode)!, parse.GetValue(cEnt)),
                NormalizerFile = parse.GetValue(normalizer),
                PreferencesFile = parse.GetValue(preferences),
                MaxNewTokens = CommonOptions.Positive(parse.GetValue(maxNew), "--max-new-tokens"),
                MaxSeqLen = CommonOptions.Positive(parse.GetValue(maxSeq), "--max-seq-len"),
            }, progress);
            return new JsonObject
            {
                ["bundle"] = Path.GetFullPath(bundle.Directory),
                ["name"] = bundle.Name,
                ["vocab_size"] = bundle.VocabSize,
                ["eos_ids"] = new JsonArray(bundle.EosIds.Select(id => (JsonNode)id).ToArray()),
                ["prompts"] = bundle.Prompts.Count,
                ["mode"] = bundle.Defaults.Reading.Name,
                ["normalizer"] = RlhfGym.Env.Normalization.RewardNormalizer.KindName(bundle.Defaults.Normalizer),
                ["chat_template"] = bundle.Info["chat_template"]?.DeepClone(),
                ["reference_family"] = bundle.Info["reference_family"]?.DeepClone(),
                ["reward_family"] = bundle.Info["reward_family"]?.DeepClone(),
                ["normalizer_fit"] = bundle.Info["normalizer_fit"]?.DeepClone(),
            };
        });
        return new Command("bundle", "env bundles from other sources") { fromHf };
    }
}
