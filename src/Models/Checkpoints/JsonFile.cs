using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfGym.Models.Checkpoints;

/// <summary>Reads a file that must hold one JSON object, with errors that name the file.</summary>
public static class JsonFile
{
    /// <exception cref="FileNotFoundException">the file is missing</exception>
    /// <exception cref="InvalidDataException">the file is not valid JSON or not an object</exception>
    public static JsonObject ReadObject(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        try
        {
            return Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }

    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false };

    /// <summary>
    /// Parses JSON text, refusing a key given twice in one object with a <see cref="JsonException"/> (like any other
    /// syntax error) instead of a bare ArgumentException later, when the object is first read.
    /// </summary>
    public static JsonNode? Parse(string text) => JsonNode.Parse(text, documentOptions: Strict);

    /// <summary>As <see cref="Parse(string)"/>, for UTF-8 bytes.</summary>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8) => JsonNode.Parse(utf8, documentOptions: Strict);
}
