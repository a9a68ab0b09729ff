using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.HuggingFace;

/// <summary>
/// An RlhfGym model directory (<see cref="ModelCheckpoint"/>: this project's config and tensor names) written as a
/// Hugging Face checkpoint of the family its architecture is, so plain PyTorch or transformers code loads it: a bundle's
/// reference (SFT) or reward model, or a trained policy.
/// </summary>
public static class HfExport
{
    /// <summary>The Hugging Face family whose architecture this config is, or an ArgumentException saying why none is.</summary>
    public static HfFamily FamilyOf(TransformerConfig c) => (c.Positions, c.Norm, c.Mlp, c.Bias) switch
    {
        (PositionKind.Rotary, NormKind.RmsNorm, MlpKind.SwiGlu, false) => c.QkvBias ? HfFamily.Qwen2 : HfFamily.Llama,
        (PositionKind.Learned, NormKind.LayerNorm, MlpKind.Gelu or MlpKind.GeluTanh, true) when !c.QkvBias => HfFamily.Gpt2,
        _ => throw new ArgumentException($"no Hugging Face family has this architecture (positions {c.Positions}, norm {c.Norm}, mlp {c.Mlp}, "
            + $"bias {c.Bias}, qkv_bias {c.QkvBias}): Llama needs rotary positions, RMSNorm, SwiGLU and no bias; GPT-2 learned positions, LayerNorm, GELU and biases"),
    };

    /// <summary>Writes the model in <paramref name="modelDirectory"/> (with its reward head when it has one) to
    /// <paramref name="outDirectory"/>, whole or not at all (a temp folder renamed at the end).</summary>
    /// <param name="writeTokenizer">Writes the model's tokenizer files into the folder it is given (before the rename), so
    /// the export is a complete Hugging Face model folder; null writes none.</param>
    /// <returns>The family written.</returns>
    public static HfFamily Export(string modelDirectory, string outDirectory, HfTokenIds? tokenIds = null, bool overwrite = false,
        Action<string>? writeTokenizer = null)
    {
        if (Directory.Exists(outDirectory) && !overwrite)
            throw new IOException($"{outDirectory} exists: choose another folder, or overwrite it (--force)");
        string weights = ModelCheckpoint.WeightsPath(modelDirectory);
        if (!File.Exists(weights)) throw new FileNotFoundException($"{modelDirectory}: not an RlhfGym model directory ({ModelCheckpoint.WeightsFile} missing)", weights);
        bool withHead = SafeTensors.ReadHeader(weights).Entries.Any(e => e.Name == HfWeightMap.ScoreWeight);
        var (model, head) = ModelCheckpoint.Load(modelDirectory, CPU, withHead);
        using (model)
        using (head)
        {
            var family = FamilyOf(model.Config);
            string full = Path.GetFullPath(outDirectory);
            string temp = $"{full}.tmp-{Guid.NewGuid():N}";
            try
            {
                HfCheckpoint.Save(temp, family, model, head, tokenIds);
                writeTokenizer?.Invoke(temp);
                if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
                Directory.Move(temp, full);
            }
            finally
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            return family;
        }
    }
}
