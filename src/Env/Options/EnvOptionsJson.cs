using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;

namespace RlhfGym.Env.Options;

/// <summary>
/// Env options as a JSON object of typed values (env.json, compare grids): integers and numbers as JSON numbers,
/// booleans as JSON booleans, choices as strings, an option that does not apply (c_ent of a bandit reading) as null.
/// Values go through <see cref="EnvOptionsCodec"/> both ways, so JSON accepts what the wire and the CLI accept.
/// </summary>
public static class EnvOptionsJson
{
    /// <summary>The given options' values as JSON, in the order of <paramref name="keys"/>.</summary>
    public static JsonObject Write(EnvOptions options, IEnumerable<string> keys)
    {
        var text = EnvOptionsCodec.Encode(options);
        var json = new JsonObject();
        foreach (var key in keys)
        {
            var option = EnvOptionTable.Find(key) ?? throw new ArgumentException($"unknown option '{key}'", nameof(keys));
            string v = text[key];
            json[key] = v == "" ? null : option.Type switch
            {
                EnvOptionType.Integer => JsonValue.Create(int.Parse(v, CultureInfo.InvariantCulture)),
                EnvOptionType.Number => JsonValue.Create(double.Parse(v, NumberStyles.Float, CultureInfo.InvariantCulture)),
                EnvOptionType.Boolean => JsonValue.Create(v == "true"),
                _ => JsonValue.Create(v),
            };
        }
        return json;
    }

    /// <summary>
    /// A JSON value as the codec's text: strings as they are, numbers as written, booleans as true/false; null for a
    /// JSON null (the option is not given). Anything else is an <see cref="EnvOptionException"/> naming the key.
    /// </summary>
    public static string? Text(string key, JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.Number => v.ToJsonString(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValueKind() == JsonValueKind.True ? "true" : "false",
        _ => throw new EnvOptionException(key, $"option '{key}' must be a string, number or boolean, got {node.GetValueKind().ToString().ToLowerInvariant()}"),
    };
}
