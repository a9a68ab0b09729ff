using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Models.HuggingFace;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym export --hf`: a bundle's reference or reward model, or a trained policy, as a Hugging Face checkpoint.</summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var hf = new Option<bool>("--hf") { Description = "write Hugging Face layout (config.json + model.safetensors of the model's family: Llama, Qwen2 or GPT-2)" };
        var model = new Option<string>("--model")
        {
            Description = "the model: a model directory (a run's policy/, a bundle's reference/ or reward/), or 'reference' / 'reward' with --env",
            Required = true,
        };
        var env = new Option<string?>("--env") { Description = "registry id or bundle directory whose 'reference' or 'reward' model to export (built if needed)" };
        var outDir = new Option<string>("--out") { Description = "directory to write the checkpoint into (must not exist unless --force)", Required = true };
        var force = new Option<bool>("--force") { Description = "replace --out if it exists" };
        var command = new Command("export", "write a model in another format (Hugging Face), for PyTorch or transformers") { hf, model, env, outDir, force };
        VerbRunner.Set(command, (parse, progress) =>
        {
            if (!parse.GetValue(hf)) throw new ArgumentException("export needs a format: --hf (the only one so far)");
            string which = parse.GetValue(model)!;
            string? bundleDir = null, modelDir;
            if (parse.GetValue(env) is { } envId)
            {
                if (which is not (EnvBundle.ReferenceDir or EnvBundle.RewardDir))
                    throw new ArgumentException($"with --env, --model must be '{EnvBundle.ReferenceDir}' or '{EnvBundle.RewardDir}', got '{which}'");
                bundleDir = EnvRegistry.Resolve(envId, progress);
                modelDir = Path.Combine(bundleDir, which);
            }
            else
            {
                if (which is EnvBundle.ReferenceDir or EnvBundle.RewardDir && !Directory.Exists(which))
                    throw new ArgumentException($"--model {which} names a bundle's model: add --env ID|BUNDLE_DIR");
                if (!Directory.Exists(which)) throw new DirectoryNotFoundException($"--model {which}: directory not found");
                modelDir = which;
                // A model inside a bundle takes the bundle's token ids (transformers needs pad_token_id to score batches).
                string parent = Path.GetDirectoryName(Path.GetFullPath(modelDir))!;
                if (File.Exists(Path.Combine(parent, EnvBundle.EnvFile))) bundleDir = parent;
            }
            HfTokenIds? ids = null;
            Action<string>? writeTokenizer = null;
            if (bundleDir is not null)
            {
                var bundle = EnvBundle.Load(bundleDir);
                ids = new HfTokenIds(Pad: bundle.PadId, Eos: bundle.EosIds);
                writeTokenizer = bundle.WriteHfTokenizer;
            }
            string output = parse.GetValue(outDir)!;
            var family = HfExport.Export(modelDir, output, ids, parse.GetValue(force), writeTokenizer);
            progress($"wrote {HfFamilies.ModelType(family)} checkpoint {Path.GetFullPath(output)}");
            return new JsonObject
            {
                ["model"] = Path.GetFullPath(modelDir),
                ["out"] = Path.GetFullPath(output),
                ["format"] = "hf",
                ["model_type"] = HfFamilies.ModelType(family),
                ["files"] = new JsonArray(Directory.GetFiles(output).Select(Path.GetFileName).Order().Select(f => (JsonNode)f!).ToArray()),
                ["pad_token_id"] = ids?.Pad,
                ["eos_token_id"] = ids?.Eos is { } eos ? new JsonArray(eos.Select(e => (JsonNode)e).ToArray()) : null,
            };
        });
        return command;
    }
}
