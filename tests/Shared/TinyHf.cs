using System.Text.Json.Nodes;
using RlhfGym.Models.HuggingFace;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Tests;

/// <summary>Tiny Hugging Face-layout inputs for bundle tests: a ChatML byte-level BPE tokenizer and random models.</summary>
internal static class TinyHf
{
    public const int Vocab = 64;

    /// <summary>A byte-level BPE tokenizer.json over lowercase text with ChatML's specials, and its config.</summary>
    internal static void WriteTokenizer(string dir)
    {
        Directory.CreateDirectory(dir);
        var vocab = new JsonObject();
        int next = 0;
        foreach (var token in "abcdefghijklmnopqrstuvwxyz".Select(c => c.ToString()).Concat(["\u0120", "\u010a", "!", "?", ".", "he", "\u0120t"]))
            vocab[token] = next++;
        var specials = new[] { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };
        var added = new JsonArray();
        foreach (var s in specials) added.Add(new JsonObject { ["id"] = next++, ["content"] = s, ["special"] = true });
        var json = new JsonObject
        {
            ["added_tokens"] = added,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h e", "\u0120 t") },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
            new JsonObject { ["eos_token"] = "<|endoftext|>", ["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" }.ToJsonString());
    }

    internal static void WriteModels(string referenceDir, string rewardDir, int rewardVocab = Vocab)
    {
        random.manual_seed(3);
        var llama = new TransformerConfig { VocabSize = Vocab, DModel = 16, NLayers = 1, NHeads = 2, NKvHeads = 1, DFf = 32, MaxSeqLen = 96, TiedEmbeddings = false };
        using (var reference = new CausalTransformer(llama)) HfCheckpoint.Save(referenceDir, HfFamily.Llama, reference);
        var qwen = llama with { VocabSize = rewardVocab, QkvBias = true, TiedEmbeddings = true };
        using var rm = new CausalTransformer(qwen);
        using var head = new ScalarHead(qwen.DModel);
        HfCheckpoint.Save(rewardDir, HfFamily.Qwen2, rm, head);
    }

}
