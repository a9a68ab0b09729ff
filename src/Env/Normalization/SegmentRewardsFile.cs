using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Env.Normalization;

/// <summary>
/// Reads the input of `rlhfgym normalizer fit`: JSON lines {"rewards":[r_1, …, r_K]}, one response's raw segment
/// rewards in order. Every problem names the file and line.
/// </summary>
public static partial class SegmentRewardsFile
{
    [GeneratedRegex(@"(?<![\w""])-?(NaN|Infinity)(?![\w""])")]
    private static partial Regex NonFiniteLiteral();

    public static List<IReadOnlyList<double>> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        var result = new List<IReadOnlyList<double>>();
        int lineNo = 0;
        foreach (var text in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonNode? node;
            try
            {
                node = JsonFile.Parse(text);
            }
            catch (JsonException e)
            {
                // Python's json writes NaN and Infinity as bare words, which are not JSON.
                if (NonFiniteLiteral().IsMatch(text)) throw new InvalidDataException($"{path}:{lineNo}: a reward is not finite (NaN or Infinity)");
                throw new InvalidDataException($"{path}:{lineNo}: not valid JSON: {e.Message}", e);
            }
            if (node is not JsonObject obj || obj["rewards"] is not JsonArray array)
                throw new InvalidDataException($"{path}:{lineNo}: expected {{\"rewards\":[r_1, …, r_K]}}");
            if (array.Count == 0) throw new InvalidDataException($"{path}:{lineNo}: 'rewards' is empty (a response needs at least one segment)");
            var rewards = new double[array.Count];
            for (int k = 0; k < array.Count; k++)
            {
                if (array[k] is not JsonValue v || !v.TryGetValue<double>(out rewards[k]))
                    throw new InvalidDataException($"{path}:{lineNo}: rewards[{k}] is not a number");
                if (!double.IsFinite(rewards[k])) throw new InvalidDataException($"{path}:{lineNo}: rewards[{k}] is not finite");
            }
            result.Add(rewards);
        }
        if (result.Count == 0) throw new InvalidDataException($"{path}: no responses (the file is empty)");
        return result;
    }
}
