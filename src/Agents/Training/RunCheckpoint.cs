using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Algorithms;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Agents.Training;

/// <summary>
/// A run's checkpoint: policy weights (safetensors + config), the algorithm's state (critic, optimizers, baselines),
/// and state.json (iteration, KL coefficient). Written into a fresh sibling directory and swapped in by renames, so
/// an interrupted write never replaces the last good checkpoint; state.json is written last and marks completeness.
/// </summary>
public static class RunCheckpoint
{
    public const string Directory = "checkpoint", PolicyDir = "policy", StateFile = "state.json";

    public static void Save(string runDir, int iteration, double klCoef, CausalTransformer policy, IAlgorithm algorithm)
    {
        string final = Path.Combine(runDir, Directory);
        string temp = Path.Combine(runDir, $".{Directory}.{Guid.NewGuid():N}.tmp");
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            ModelCheckpoint.Save(Path.Combine(temp, PolicyDir), policy, metadata: new Dictionary<string, string> { ["kind"] = "policy" });
            algorithm.SaveState(temp);
            AtomicFile.WriteAllText(Path.Combine(temp, StateFile), new JsonObject
            {
                ["version"] = 1,
                ["iteration"] = iteration,
                ["kl_coef"] = klCoef,
                ["algorithm"] = algorithm.Name,
            }.ToJsonString());
            string old = Path.Combine(runDir, $".{Directory}.old");
            if (File.Exists(Path.Combine(final, StateFile)))
            {
                // The current checkpoint is complete: it becomes the fallback until the new one is in place.
                if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
                System.IO.Directory.Move(final, old);
            }
            // Otherwise an earlier save stopped between its renames: .checkpoint.old is the last good one and stays
            // until the new one is in place.
            else if (System.IO.Directory.Exists(final)) System.IO.Directory.Delete(final, true);
            System.IO.Directory.Move(temp, final);
            if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, true);
        }
        catch
        {
            if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, true);
            throw;
        }
    }

    /// <summary>The last complete checkpoint's (iteration, KL coefficient, directory), or null when there is none.</summary>
    public static (int Iteration, double KlCoef, string Path)? Find(string runDir)
    {
        string dir = Path.Combine(runDir, Directory);
        // A crash between the two renames leaves only the previous checkpoint under .checkpoint.old.
        if (!File.Exists(Path.Combine(dir, StateFile))) dir = Path.Combine(runDir, $".{Directory}.old");
        string state = Path.Combine(dir, StateFile);
        if (!File.Exists(state)) return null;
        JsonObject json;
        try { json = JsonFile.ReadObject(state); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{state}: corrupt checkpoint state ({e.Message})", e); }
        if (json["iteration"] is not JsonValue it || !it.TryGetValue<int>(out int iteration) || json["kl_coef"] is not JsonValue kl || !kl.TryGetValue<double>(out double coef))
            throw new InvalidDataException($"{state}: corrupt checkpoint state (needs integer 'iteration' and number 'kl_coef')");
        return (iteration, coef, dir);
    }
}
