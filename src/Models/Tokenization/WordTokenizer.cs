using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Models.Tokenization;

/// <summary>
/// Whitespace word tokenizer over a fixed vocabulary (the built-in PhraseWorld benchmark). Unknown words map to
/// &lt;unk&gt;. Saved as JSON: {"type":"word","version":1,"tokens":[...]} with the special tokens first.
/// </summary>
public sealed class WordTokenizer : ITokenizer
{
    public const string Pad = "<pad>", Unk = "<unk>", Eos = "<eos>";
    public const int FormatVersion = 1;

    /// <summary>The file name a directory keeps this tokenizer under (not Hugging Face's tokenizer.json: the format is ours).</summary>
    public const string FileName = "word_tokenizer.json";

    /// <summary>The name directories written before 0.2 used; still read when <see cref="FileName"/> is absent, never written.</summary>
    public const string LegacyFileName = "tokenizer.json";

    /// <summary>Where a directory's word tokenizer is: <see cref="FileName"/>, else the legacy name if that exists.</summary>
    public static string PathIn(string directory)
    {
        string current = System.IO.Path.Combine(directory, FileName), legacy = System.IO.Path.Combine(directory, LegacyFileName);
        return !File.Exists(current) && File.Exists(legacy) ? legacy : current;
    }

    private readonly string[] _tokens;
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int> _special;

    public WordTokenizer(IEnumerable<string> specialTokens, IEnumerable<string> words)
    {
        var specials = new List<string> { Pad, Unk, Eos };
        specials.AddRange(specialTokens.Where(s => !specials.Contains(s)));
        _tokens = specials.Concat(words.Where(w => !specials.Contains(w)).Distinct()).ToArray();
        _ids = new Dictionary<string, int>(_tokens.Length);
        for (int i = 0; i < _tokens.Length; i++)
        {
            var tok = _tokens[i];
            if (string.IsNullOrEmpty(tok) || tok.Any(char.IsWhiteSpace))
                throw new ArgumentException($"token {i} '{tok}' is empty or contains whitespace");
            _ids[tok] = i;
        }
        _special = specials.ToDictionary(s => s, s => _ids[s]);
    }

    public int VocabSize => _tokens.Length;
    public int EosId => _ids[Eos];
    public int PadId => _ids[Pad];
    public int UnkId => _ids[Unk];
    public IReadOnlyDictionary<string, int> SpecialTokens => _special;
    public IReadOnlyList<string> Tokens => _tokens;

    public int[] Encode(string text) =>
        text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => _ids.TryGetValue(w, out var id) ? id : UnkId).ToArray();

    public int Id(string token) => _ids.TryGetValue(token, out var id) ? id
        : throw new KeyNotFoundException($"token '{token}' is not in the vocabulary");

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public string Decode(ReadOnlySpan<int> ids)
    {
        var words = new List<string>(ids.Length);
        foreach (var id in ids) words.Add(TokenText(id));
        return string.Join(' ', words);
    }

    public string TokenText(int id) => id >= 0 && id < _tokens.Length ? _tokens[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in 0..{_tokens.Length - 1}");

    public void Save(string path)
    {
        var json = new JsonObject
        {
            ["type"] = "word",
            ["version"] = FormatVersion,
            ["special"] = new JsonArray(_special.Keys.Select(s => (JsonNode)s).ToArray()),
            ["tokens"] = new JsonArray(_tokens.Select(t => (JsonNode)t).ToArray()),
        };
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
    }

    public static WordTokenizer Load(string path)
    {
        var json = JsonFile.ReadObject(path);
        if (json["type"] is not JsonValue typeNode || !typeNode.TryGetValue<string>(out var type) || type != "word")
            throw new InvalidDataException($"{path}: field 'type' must be \"word\", got {json["type"]?.ToJsonString() ?? "nothing"}");
        if (json["version"] is not JsonValue versionNode || !versionNode.TryGetValue<int>(out int version) || version != FormatVersion)
            throw new InvalidDataException($"{path}: field 'version' must be {FormatVersion}, got {json["version"]?.ToJsonString() ?? "nothing"}");
        List<string> Strings(string field) => (json[field] as JsonArray ?? throw new InvalidDataException($"{path}: missing array '{field}'"))
            .Select((n, i) => n is JsonValue v && v.TryGetValue<string>(out var s) && s.Length > 0 ? s
                : throw new InvalidDataException($"{path}: '{field}'[{i}] must be a non-empty string, got {n?.ToJsonString() ?? "null"}")).ToList();
        var tokens = Strings("tokens");
        var special = Strings("special");
        if (tokens.Count < 3 || tokens[0] != Pad || tokens[1] != Unk || tokens[2] != Eos)
            throw new InvalidDataException($"{path}: 'tokens' must start with {Pad}, {Unk}, {Eos}");
        if (tokens.Distinct().Count() != tokens.Count) throw new InvalidDataException($"{path}: 'tokens' has duplicates");
        var tokenizer = new WordTokenizer(special, tokens);
        if (!tokenizer.Tokens.SequenceEqual(tokens)) throw new InvalidDataException($"{path}: the 'special' tokens must come first in 'tokens', in the same order");
        return tokenizer;
    }
}
