using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Models.Tokenization;

/// <summary>
/// Real-model tokenizers through Microsoft.ML.Tokenizers behind <see cref="ITokenizer"/>:
/// <list type="bullet">
/// <item>tokenizer.json byte-level BPE (GPT-2, Llama 3, Qwen2, Mistral-Nemo, …). The library has no tokenizer.json
/// reader, so the vocabulary, merges, added tokens and the pre-tokenizer's split regex are read here and handed to
/// <see cref="BpeTokenizer"/> with its byte-level option;</item>
/// <item>SentencePiece tokenizer.model (Llama 2, Mistral 7B) through <see cref="LlamaTokenizer"/>;</item>
/// <item>tiktoken encodings cl100k_base and o200k_base, whose data packages ship with the library.</item>
/// </list>
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    /// <summary>GPT-2's pre-tokenizer split (openai/gpt-2 encoder.py; the ByteLevel pre-tokenizer's default).</summary>
    public const string Gpt2SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public const string TokenizerJson = "tokenizer.json", SentencePieceModel = "tokenizer.model", TokenizerConfig = "tokenizer_config.json";

    private readonly Tokenizer _tokenizer;
    private readonly Dictionary<int, string> _idToToken;
    private WholeWordLookup? _wholeWords; // set for tokenizer.json files with ignore_merges

    public int VocabSize { get; }
    public int EosId { get; }
    public int PadId { get; }
    public IReadOnlyDictionary<string, int> SpecialTokens { get; }
    /// <summary>The library tokenizer underneath (for counting, offsets and the like).</summary>
    public Tokenizer Inner => _tokenizer;

    private HfTokenizer(Tokenizer tokenizer, IReadOnlyDictionary<string, int> vocabulary, IReadOnlyDictionary<string, int> specials,
        string? eos, string? pad, string source)
    {
        _tokenizer = tokenizer;
        SpecialTokens = specials;
        _idToToken = new Dictionary<int, string>();
        foreach (var (token, id) in vocabulary) _idToToken.TryAdd(id, token);
        foreach (var (token, id) in specials) _idToToken[id] = token;
        VocabSize = _idToToken.Count == 0 ? 0 : _idToToken.Keys.Max() + 1;
        int Lookup(string token, string role) => specials.TryGetValue(token, out int id) || vocabulary.TryGetValue(token, out id)
            ? id : throw new InvalidDataException($"{source}: {role} token '{token}' is not in the vocabulary");
        EosId = eos is null ? throw new InvalidDataException($"{source}: no end-of-sequence token (eos_token in {TokenizerConfig})") : Lookup(eos, "eos");
        PadId = pad is null ? EosId : Lookup(pad, "pad");
    }

    /// <summary>
    /// A Hugging Face model directory's tokenizer: tokenizer.json when it is byte-level BPE, else tokenizer.model
    /// (Llama 2, Mistral 7B and Phi-3 ship a SentencePiece-style tokenizer.json beside it), with the added tokens
    /// of tokenizer.json (chat markers such as &lt;|end|&gt;) as special tokens.
    /// </summary>
    public static HfTokenizer Load(string directory)
    {
        string json = Path.Combine(directory, TokenizerJson), model = Path.Combine(directory, SentencePieceModel);
        if (File.Exists(json))
        {
            try
            {
                return FromTokenizerJson(json);
            }
            catch (NotSupportedException) when (File.Exists(model))
            {
                return FromSentencePiece(model, AddedTokens(JsonFile.ReadObject(json), json));
            }
        }
        if (File.Exists(model)) return FromSentencePiece(model);
        throw new FileNotFoundException($"{directory}: neither {TokenizerJson} nor {SentencePieceModel} is there");
    }

    private static Regex SplitRegex(string path, string pattern)
    {
        try { return new Regex(pattern, RegexOptions.Compiled); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: the pre-tokenizer's Split pattern is not a valid regular expression: {e.Message}", e); }
    }

    private static Dictionary<string, int> AddedTokens(JsonObject json, string path)
    {
        var specials = new Dictionary<string, int>();
        int i = 0;
        foreach (var added in json["added_tokens"] as JsonArray ?? [])
        {
            if (added?["content"] is JsonValue content && added["id"] is JsonValue id)
            {
                if (!content.TryGetValue<string>(out var text) || !id.TryGetValue<int>(out int tokenId) || tokenId < 0)
                    throw new InvalidDataException($"{path}: added_tokens[{i}] needs a string 'content' and an integer 'id' >= 0, got {added.ToJsonString()}");
                specials[text] = tokenId;
            }
            i++;
        }
        return specials;
    }

    public static HfTokenizer FromTokenizerJson(string path)
    {
        var json = JsonFile.ReadObject(path);
        var model = json["model"] as JsonObject ?? throw new InvalidDataException($"{path}: no 'model' object");
        if ((string?)model["type"] != "BPE") throw new NotSupportedException($"{path}: model type '{(string?)model["type"]}' is not supported (BPE)");
        if (!IsByteLevel(json)) throw new NotSupportedException($"{path}: only byte-level BPE is supported (no ByteLevel pre-tokenizer or decoder)");
        var vocab = (model["vocab"] as JsonObject ?? throw new InvalidDataException($"{path}: model.vocab is missing"))
            .ToDictionary(kv => kv.Key, kv => kv.Value is JsonValue v && v.TryGetValue<int>(out int id) && id >= 0 ? id : throw new InvalidDataException($"{path}: vocab entry '{kv.Key}' is not an integer id >= 0"));
        // Merges are "a b" strings (older files) or ["a", "b"] pairs (newer ones).
        var merges = (model["merges"] as JsonArray ?? throw new InvalidDataException($"{path}: model.merges is missing")).Select((m, i) => m switch
        {
            JsonValue s when s.TryGetValue<string>(out var text) => text,
            JsonArray { Count: 2 } pair => $"{(string?)pair[0]} {(string?)pair[1]}",
            _ => throw new InvalidDataException($"{path}: merge {i} is neither \"a b\" nor [a, b]"),
        }).ToList();
        var specials = AddedTokens(json, path);
        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = specials,
            PreTokenizer = new RegexPreTokenizer(SplitRegex(path, SplitPattern(json) ?? Gpt2SplitPattern), specials),
        };
        var (eos, pad) = SpecialNames(Path.GetDirectoryName(path)!, specials);
        var tokenizer = new HfTokenizer(BpeTokenizer.Create(options), vocab, specials, eos, pad, path);
        // ignore_merges (Llama 3): a pre-token that is itself in the vocabulary is emitted whole, merges or not.
        if (model["ignore_merges"] is JsonValue ignore && ignore.TryGetValue<bool>(out bool on) && on)
            tokenizer._wholeWords = new WholeWordLookup(options.PreTokenizer, vocab, specials);
        return tokenizer;
    }

    /// <param name="addedTokens">Tokens added on top of the model's pieces (a tokenizer.json's added_tokens); those
    /// the model already has are left to it.</param>
    public static HfTokenizer FromSentencePiece(string path, IReadOnlyDictionary<string, int>? addedTokens = null)
    {
        using var stream = File.OpenRead(path);
        SentencePieceTokenizer sp;
        try
        {
            sp = LlamaTokenizer.Create(stream, addBeginOfSentence: true, addEndOfSentence: false, specialTokens: null);
            if (addedTokens is { Count: > 0 })
            {
                var extra = addedTokens.Where(kv => !sp.Vocabulary.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value);
                if (extra.Count > 0)
                {
                    stream.Position = 0;
                    sp = LlamaTokenizer.Create(stream, addBeginOfSentence: true, addEndOfSentence: false, specialTokens: extra);
                }
            }
        }
        catch (Exception e) // the protobuf parser's errors (some are IOExceptions) say nothing of the file
        {
            throw new InvalidDataException($"{path}: not a SentencePiece model: {e.Message}", e);
        }
        var (eos, pad) = SpecialNames(Path.GetDirectoryName(path)!, sp.SpecialTokens ?? new Dictionary<string, int>());
        return new HfTokenizer(sp, sp.Vocabulary, sp.SpecialTokens ?? new Dictionary<string, int>(), eos ?? sp.EndOfSentenceToken, pad, path);
    }

    /// <summary>A tiktoken encoding: cl100k_base or o200k_base (end of text: &lt;|endoftext|&gt;).</summary>
    public static HfTokenizer FromTiktoken(string encoding)
    {
        if (encoding is not ("cl100k_base" or "o200k_base")) throw new ArgumentException($"tiktoken encoding must be cl100k_base or o200k_base, got '{encoding}'");
        var tk = TiktokenTokenizer.CreateForEncoding(encoding);
        var specials = tk.SpecialTokens ?? new Dictionary<string, int>();
        var vocabulary = new Dictionary<string, int>();
        return new HfTokenizer(tk, vocabulary, specials, "<|endoftext|>", null, encoding);
    }

    public int[] Encode(string text) => _wholeWords is null ? _tokenizer.EncodeToIds(text).ToArray() : _wholeWords.Encode(text, _tokenizer);

    public string Decode(ReadOnlySpan<int> ids) => _tokenizer.Decode(ids.ToArray());

    public string TokenText(int id) => _idToToken.TryGetValue(id, out var token) ? token : _tokenizer.Decode([id]);

    private static bool IsByteLevel(JsonObject json)
    {
        static bool Has(JsonNode? node) => node is JsonObject o && ((string?)o["type"] == "ByteLevel"
            || (o["pretokenizers"] ?? o["decoders"]) is JsonArray list && list.Any(Has));
        return Has(json["pre_tokenizer"]) || Has(json["decoder"]);
    }

    // The regex of a Split pre-tokenizer (Llama 3, Qwen2 and others replace GPT-2's); null means GPT-2's own.
    private static string? SplitPattern(JsonObject json)
    {
        static string? Find(JsonNode? node) => node switch
        {
            JsonObject o when (string?)o["type"] == "Split" => (string?)o["pattern"]?["Regex"],
            JsonObject o when o["pretokenizers"] is JsonArray list => list.Select(Find).FirstOrDefault(p => p is not null),
            _ => null,
        };
        return Find(json["pre_tokenizer"]);
    }

    // eos_token and pad_token from tokenizer_config.json (a string, or {"content": …}); GPT-2's <|endoftext|> otherwise.
    private static (string? Eos, string? Pad) SpecialNames(string directory, IReadOnlyDictionary<string, int> specials)
    {
        string configPath = Path.Combine(directory, TokenizerConfig);
        static string? Name(JsonNode? node) => node switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonObject o => (string?)o["content"],
            _ => null,
        };
        if (File.Exists(configPath))
        {
            var config = JsonFile.ReadObject(configPath);
            return (Name(config["eos_token"]), Name(config["pad_token"]));
        }
        return (specials.ContainsKey("<|endoftext|>") ? "<|endoftext|>" : null, null);
    }
}
