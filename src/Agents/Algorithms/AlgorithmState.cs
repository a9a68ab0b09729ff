using System.Text.Json.Nodes;
using RlhfGym.Models.Checkpoints;
using TorchSharp.Modules;

namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// Reading back what an algorithm saved in a run checkpoint (its optimizer state, its step counter), with errors that
/// name the file: a resume from a damaged checkpoint must say which file is wrong, not throw a bare libtorch or null error.
/// Algorithms of your own can use it in their LoadState.
/// </summary>
public static class AlgorithmState
{
    public static void LoadOptimizer(AdamW optimizer, string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found (an incomplete run checkpoint?)", path);
        try { optimizer.load_state_dict(path); }
        catch (Exception e)
        {
            throw new InvalidDataException($"{path}: not a readable optimizer state for this model ({e.Message})", e);
        }
    }

    /// <summary>The JSON object of an algorithm's state file and its "step", an integer ≥ 0.</summary>
    public static (JsonObject Json, int Step) Read(string path)
    {
        var json = JsonFile.ReadObject(path);
        if (json["step"] is not JsonValue value || !value.TryGetValue<int>(out int step) || step < 0)
            throw new InvalidDataException($"{path}: field 'step' must be an integer >= 0, got {json["step"]?.ToJsonString() ?? "nothing"}");
        return (json, step);
    }
}
