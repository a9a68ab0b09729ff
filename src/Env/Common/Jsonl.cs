using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Env.Common;

/// <summary>
/// JSON-lines files, ours with a "version" field on every line. Written atomically; read with errors that name the
/// file, the line and the field.
/// </summary>
public static class Jsonl
{
    /// <summary>Readable output: "&lt;eos&gt;" rather than "\u003Ceos\u003E".</summary>
    public static readonly JsonSerializerOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(string path, IEnumerable<JsonObject> lines)
    {
        AtomicFile.Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
            foreach (var line in lines) writer.WriteLine(line.ToJsonString(Options));
        });
    }

    /// <summary>Parse every non-blank line; <paramref name="version"/> must match each line's "version" (null: a
    /// user's file, which has none).</summary>
    public static List<T> Read<T>(string path, int? version, Func<JsonLine, T> parse)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var result = new List<T>();
        int lineNo = 0;
        foreach (var text in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject obj;
            try
            {
                obj = JsonFile.Parse(text) as JsonObject ?? throw new InvalidDataException($"{path}:{lineNo}: not a JSON object");
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{path}:{lineNo}: not valid JSON: {e.Message}", e);
            }
            var line = new JsonLine(path, lineNo, obj);
            if (version is { } expected && line.Int("version") is var found && found != expected)
                throw new InvalidDataException($"{path}:{lineNo}: field 'version' is {found}, this build reads version {expected}");
            result.Add(parse(line));
        }
        return result;
    }
}

/// <summary>One parsed line with typed getters whose errors name file, line and field.</summary>
public readonly record struct JsonLine(string Path, int LineNo, JsonObject Object)
{
    private InvalidDataException Bad(string field, string expected) =>
        new($"{Path}:{LineNo}: field '{field}' must be {expected}");

    public JsonNode Node(string field) => Object[field] ?? throw Bad(field, "present");

    public string String(string field) =>
        Object[field] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw Bad(field, "a string");

    /// <summary>A string field that may be absent (null then); present, it must be a string.</summary>
    public string? OptionalString(string field) => Object[field] is null ? null : String(field);

    public int Int(string field) =>
        Object[field] is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw Bad(field, "an integer");

    public long Long(string field) =>
        Object[field] is JsonValue v && v.TryGetValue<long>(out var i) ? i : throw Bad(field, "an integer");

    public double Double(string field) =>
        Object[field] is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d) ? d : throw Bad(field, "a finite number");

    public JsonArray Array(string field) => Object[field] as JsonArray ?? throw Bad(field, "an array");

    public InvalidDataException Error(string message) => new($"{Path}:{LineNo}: {message}");
}
