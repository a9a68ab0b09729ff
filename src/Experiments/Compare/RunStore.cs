using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Training;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Experiments.Compare;

/// <summary>
/// Finished runs shared between grids. A run is filed under what it trained (env, agent, the options the cell sets,
/// β and the iteration budget), not under the cell's name, so the same setting in two presets (paper-main's
/// "segment" and the algorithms preset's "ppo-segment", or a frontier's β 0.3 point and paper-main's default) trains
/// once. Two cells that differ only in restating a bundle default (normalizer "location" on the segment env) are
/// filed apart: the key reads the cell, not the bundle. A store holds the runs of one build; code that changes
/// training needs a new store.
/// </summary>
public sealed class RunStore(string root)
{
    public string Root { get; } = root;

    /// <summary>The setting a run trained, as a grid file writes it, without the cell's name and series and with β resolved.</summary>
    public static JsonObject Setting(CompareCell cell, int iterations)
    {
        var setting = CompareGrid.Describe(cell with { Name = "", Series = null, KlCoef = cell.KlCoef ?? new TrainerOptions().KlCoef });
        setting.Remove("name");
        setting["iterations"] = iterations;
        return setting;
    }

    /// <summary>"&lt;env&gt;__&lt;agent&gt;__beta-&lt;β&gt;__&lt;hash of the whole setting&gt;": readable in a listing, unique by the hash.</summary>
    public static string Key(CompareCell cell, int iterations)
    {
        var setting = Setting(cell, iterations);
        string canonical = string.Join("\n", setting.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value!.ToJsonString()}"));
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))[..12];
        string env = new string(cell.Env.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '.' ? ch : '_').ToArray()).TrimStart('_', '.');
        if (env.Length > 60) env = env[^60..];
        double beta = (double)setting["kl_coef"]!;
        return $"{env}__{cell.Agent}__beta-{beta.ToString("R", CultureInfo.InvariantCulture)}__{hash}";
    }

    /// <summary>The directory of one seed's run (nothing is created).</summary>
    public string RunDirectory(CompareCell cell, int iterations, int seed) => Path.Combine(Root, Key(cell, iterations), $"seed-{seed}");

    /// <summary>Writes the setting beside its runs (setting.json) before the first of them trains, so a listing explains itself.</summary>
    public void Record(CompareCell cell, int iterations)
    {
        string settingFile = Path.Combine(Root, Key(cell, iterations), "setting.json");
        if (File.Exists(settingFile)) return;
        Directory.CreateDirectory(Path.GetDirectoryName(settingFile)!);
        AtomicFile.WriteAllText(settingFile, Setting(cell, iterations).ToJsonString());
    }
}
