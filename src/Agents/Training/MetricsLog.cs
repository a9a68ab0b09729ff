using System.Text.Json;
using System.Text.Json.Nodes;
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
        // A resumed run drops the lines written after its checkpoint, so the log has each iteration once.
        if (File.Exists(_path))
        {
            var kept = File.ReadAllLines(_path).Where(l => JsonNode.Parse(l)?["iteration"]?.GetValue<int>() <= keepUpToIteration).ToList();
            File.WriteAllLines(_path, kept);
        }
        _tensorboard = tensorboard.SummaryWriter(Path.Combine(runDir, "tensorboard"), createRunName: false);
    }

    public void Write(JsonObject metrics)
    {
        File.AppendAllText(_path, metrics.ToJsonString() + "\n");
        int step = metrics["iteration"]!.GetValue<int>();
        foreach (var (key, value) in metrics)
            if (key != "iteration" && value is JsonValue v && v.TryGetValue<double>(out var d) && double.IsFinite(d))
                _tensorboard.add_scalar(key, (float)d, step);
    }

    public static List<JsonObject> Read(string runDir) =>
        File.Exists(Path.Combine(runDir, FileName))
            ? File.ReadAllLines(Path.Combine(runDir, FileName)).Select(l => (JsonObject)JsonNode.Parse(l)!).ToList()
            : [];
}
