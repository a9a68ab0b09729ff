using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.Models.HuggingFace;

/// <summary>
/// A <see cref="WordTokenizer"/> written as a Hugging Face tokenizer (the `tokenizers` library's tokenizer.json with a
/// WordLevel model, plus tokenizer_config.json), so transformers' PreTrainedTokenizerFast encodes and decodes exactly as
/// the env does: split on whitespace, unknown words become &lt;unk&gt;, and decoding joins tokens with single spaces.
/// The special tokens are "added tokens" marked special, so `skip_special_tokens=True` drops them. One difference at the
/// edge: `tokenizers` also splits a special token out of a word it is glued to ("&lt;user&gt;hi"), where the env's tokenizer
/// reads the whole word as &lt;unk&gt;; text the env produces always has spaces around them.
/// </summary>
public static class HfWordLevelTokenizer
{
    public const string TokenizerFile = "tokenizer.json", ConfigFile = "tokenizer_config.json";

    public static void Write(WordTokenizer tokenizer, string directory)
    {
        Directory.CreateDirectory(directory);
        var vocab = new JsonObject();
        for (int id = 0; id < tokenizer.VocabSize; id++) vocab[tokenizer.Tokens[id]] = id;
        var added = new JsonArray(tokenizer.SpecialTokens.OrderBy(kv => kv.Value).Select(kv => (JsonNode)new JsonObject
        {
            ["id"] = kv.Value,
            ["content"] = kv.Key,
            ["single_word"] = false,
            ["lstrip"] = false,
            ["rstrip"] = false,
            ["normalized"] = false,
            ["special"] = true,
        }).ToArray());
        var file = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "WhitespaceSplit" },
            ["post_processor"] = null,
            ["decoder"] = null,
            ["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = vocab, ["unk_token"] = WordTokenizer.Unk },
        };
        var config = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
            ["eos_token"] = WordTokenizer.Eos,
            ["pad_token"] = WordTokenizer.Pad,
            ["unk_token"] = WordTokenizer.Unk,
            ["clean_up_tokenization_spaces"] = false,
        };
        var indented = new JsonSerializerOptions { WriteIndented = true };
        AtomicFile.WriteAllText(Path.Combine(directory, TokenizerFile), file.ToJsonString(indented));
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJsonString(indented));
    }
}
