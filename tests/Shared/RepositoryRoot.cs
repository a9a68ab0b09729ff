namespace RlhfGym.Tests;

/// <summary>The repository checkout the tests were built from: the first folder above the test binaries holding RlhfGym.sln.</summary>
internal static class RepositoryRoot
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "RlhfGym.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"RlhfGym.sln not found above the test binaries ({AppContext.BaseDirectory})");
    });

    public static string Path => Root.Value;

    /// <summary>A path inside the repository, e.g. File("docs", "env.md").</summary>
    public static string File(params string[] parts) => System.IO.Path.Combine([Root.Value, .. parts]);
}
