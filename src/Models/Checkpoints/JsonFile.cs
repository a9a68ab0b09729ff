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
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
    }
}
