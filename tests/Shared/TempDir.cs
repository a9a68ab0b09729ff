namespace RlhfGym.Tests;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlhfgym-test-" + Guid.NewGuid().ToString("N"));
    public TempDir() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }

    /// <summary>
    /// A path under the temp folder for a fixture built once per test process (a lazily built bundle), deleted when the
    /// process exits, so test runs do not leave bundles behind.
    /// </summary>
    public static string ForProcess(string prefix)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rlhfgym-{prefix}-{Guid.NewGuid():N}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return path;
    }
}
