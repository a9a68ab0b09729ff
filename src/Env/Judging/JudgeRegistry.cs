namespace RlhfGym.Env.Judging;

/// <summary>
/// Loaders for the judges bundles can carry, keyed by the file name in env.json's <c>gold_judge</c> field (e.g.
/// PhraseWorld's <c>world.json</c>). A world registers its loader once at start-up; the env core never knows worlds.
/// </summary>
public static class JudgeRegistry
{
    private static readonly Dictionary<string, Func<string, IEpisodeJudge>> Loaders = new(StringComparer.Ordinal);
    private static readonly Lock Gate = new();

    /// <summary>Register how to load a judge from a bundle directory whose env.json names <paramref name="file"/>.</summary>
    public static void Register(string file, Func<string, IEpisodeJudge> loadFromBundleDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(file);
        ArgumentNullException.ThrowIfNull(loadFromBundleDirectory);
        lock (Gate) Loaders[file] = loadFromBundleDirectory;
    }

    public static bool IsRegistered(string file)
    {
        lock (Gate) return Loaders.ContainsKey(file);
    }

    /// <summary>Load the judge a bundle names; a clear error when no plug-in for that judge is registered.</summary>
    public static IEpisodeJudge Load(string file, string bundleDirectory)
    {
        Func<string, IEpisodeJudge>? load;
        string registered;
        lock (Gate)
        {
            Loaders.TryGetValue(file, out load);
            registered = Loaders.Count == 0 ? "none" : string.Join(", ", Loaders.Keys);
        }
        if (load is null)
            throw new InvalidOperationException($"{Path.Combine(bundleDirectory, "env.json")}: field 'gold_judge' names '{file}', but no judge plug-in " +
                $"for it is registered (registered: {registered}); " +
                "register the plug-in of the world that wrote this bundle first (the rlhfgym CLI registers the built-in one)");
        return load(bundleDirectory);
    }
}
