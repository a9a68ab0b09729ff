using System.Text.Json.Nodes;

namespace RlhfGym.Experiments;

/// <summary>Reads a JSON number as a double whether the node was parsed from text or built from an int or a double.</summary>
public static class JsonNumbers
{
    public static double AsDouble(JsonNode? node) => node switch
    {
        JsonValue v when v.TryGetValue<double>(out var d) => d,
        JsonValue v when v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        _ => throw new InvalidDataException($"expected a number, got {node?.ToJsonString() ?? "null"}"),
    };
}
