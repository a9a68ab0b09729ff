using RlhfGym.Env.Rewards;

namespace RlhfGym.Packaging.Tests;

/// <summary>
/// The repository packed as a user would pack it: the sources copied to a temp folder (so the test never touches
/// the build outputs other tests are running from), then `dotnet pack RlhfGym.Packages.slnf -c Release -o feed`.
/// Also an RLHFGYM_HOME whose cache holds a small PhraseWorld-Segment-v0 bundle: building the full one takes about five
/// minutes on a 2-core machine, too long for every CI run (the full build is checked by hand, see docs/packaging.md).
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public static readonly TimeSpan PackTimeout = TimeSpan.FromMinutes(15);
    private static readonly string[] RootFiles =
    [
        "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "LICENSE", "THIRD-PARTY-NOTICES.md",
        "README.md", "RlhfGym.sln", "RlhfGym.Packages.slnf", ".editorconfig",
    ];
    private static readonly string[] RootFolders = ["src", "bench", "build"];
    private static readonly HashSet<string> SkippedFolders = ["bin", "obj", "npm", "node_modules"];

    private readonly Lazy<string> _home;

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "rlhfgym-pack-" + Guid.NewGuid().ToString("N"));
    public string Feed => Path.Combine(Root, "feed");
    public string Version { get; }
    internal ProcessRunner.Result Pack { get; }

    /// <summary>RLHFGYM_HOME with bundles/PhraseWorld-Segment-v0 built small (made on first use).</summary>
    public string Home => _home.Value;

    public PackedFeed()
    {
        string repo = RepositoryRoot.Path;
        string source = Path.Combine(Root, "source");
        foreach (var file in RootFiles)
            if (File.Exists(Path.Combine(repo, file))) CopyFile(Path.Combine(repo, file), Path.Combine(source, file));
        foreach (var folder in RootFolders) CopyFolder(Path.Combine(repo, folder), Path.Combine(source, folder));

        Pack = ProcessRunner.Run("dotnet", ["pack", "RlhfGym.Packages.slnf", "-c", "Release", "-o", Feed], PackTimeout, source, DotnetEnvironment);
        var models = Directory.Exists(Feed) ? Directory.GetFiles(Feed, "RlhfGym.Models.*.nupkg") : [];
        Version = models.Length == 1 ? Path.GetFileName(models[0])["RlhfGym.Models.".Length..^".nupkg".Length] : "";
        _home = new Lazy<string>(BuildHome);
    }

    /// <summary>Environment for child dotnet processes: no telemetry or banners.</summary>
    public static IReadOnlyDictionary<string, string> DotnetEnvironment { get; } = new Dictionary<string, string>
    {
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
        ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
    };

    public string Package(string id) => Path.Combine(Feed, $"{id}.{Version}.nupkg");

    private string BuildHome()
    {
        string home = Path.Combine(Root, "home");
        string bundle = TestBundles.Build(Path.Combine(Root, "bundle-build"), "PhraseWorld-Segment-v0", RewardReading.Segment(1.0));
        Directory.CreateDirectory(Path.Combine(home, "bundles"));
        Directory.Move(bundle, Path.Combine(home, "bundles", "PhraseWorld-Segment-v0"));
        return home;
    }

    private static void CopyFile(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(from, to);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (var dir in Directory.GetDirectories(from))
            if (!SkippedFolders.Contains(Path.GetFileName(dir))) CopyFolder(dir, Path.Combine(to, Path.GetFileName(dir)));
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
