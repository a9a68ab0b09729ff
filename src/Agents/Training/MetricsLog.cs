using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Env.Common;
using RlhfGym.Models.Checkpoints;
using TorchSharp.Modules;
using static TorchSharp.torch.utils;

namespace RlhfGym.Agents.Training;

/// <summary>
/// Per-iteration metrics: appended to metrics.jsonl (one object per line) and to TensorBoard event files under
/// tensorboard/ (TorchSharp's SummaryWriter), and shown as one progress line on stderr.
/// </summary>
public sealed class MetricsLog
{
    public const string FileName = "metrics.jsonl";
    private readonly string _path;
    private readonly SummaryWriter _tensorboard;

    public MetricsLog(string runDir, int keepUpToIteration)
    {
        _path = Path.Combine(runDir, FileName);
        // A resumed run drops the lines written after its checkpoint, so the log has each iteration once. A kill while a
        // line was being appended leaves it torn: the last line alone may be unreadable, and is dropped with the rest.
        if (File.Exists(_path))
        {
            var lines = File.ReadAllLines(_path).Where(l => !string.IsNullOrWhiteSpace(l)).ToList();
            var kept = new List<JsonObject>();
            for (int i = 0; i < lines.Count; i++)
            {
                var line = ParseLine(lines[i], i + 1, tornAllowed: i == lines.Count - 1);
                if (line is not null && new JsonLine(_path, i + 1, line).Int("iteration") <= keepUpToIteration) kept.Add(line);
            }
            Jsonl.Write(_path, kept);
        }
        _tensorboard = tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"), createRunName: false);
    }

    // One metrics line; null for a torn last line when that is allowed, else an error naming file and line.
    private JsonObject? ParseLine(string text, int lineNo, bool tornAllowed)
    {
        try { return JsonFile.Parse(text) as JsonObject ?? throw new InvalidDataException($"{_path}:{lineNo}: not a JSON object"); }
        catch (JsonException) when (tornAllowed) { return null; }
        catch (JsonException e) { throw new InvalidDataException($"{_path}:{lineNo}: not valid JSON: {e.Message}", e); }
    }

    public void Write(JsonObject metrics)
    {
        File.AppendAllText(_path, metrics.ToJsonString() + "\n");
        int step = metrics["iteration"]!.GetValue<int>();
        foreach (var (key, value) in metrics)
            if (key != "iteration" && value is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d))
                _tensorboard.add_scalar(key, (float)d, step);
    }

    /// <summary>Every line of a run's metrics (none when there is no file); a line that is not a JSON object is an error
    /// naming the file and line.</summary>
    public static List<JsonObject> Read(string runDir) =>
        File.Exists(Path.Combine(runDir, FileName)) ? Jsonl.Read(Path.Combine(runDir, FileName), version: null, line => line.Object) : [];
}
