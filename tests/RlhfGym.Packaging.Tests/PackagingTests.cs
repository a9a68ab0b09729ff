using System.IO.Compression;
using System.Xml.Linq;

namespace RlhfGym.Packaging.Tests;

/// <summary>
/// Installable like the tools researchers already use (README, "Install"): library packages that depend on TorchSharp
/// only, a dotnet tool that brings the CPU libtorch, and both working from a local folder feed on this machine.
/// </summary>
public class PackagingTests(PackedFeed packed) : IClassFixture<PackedFeed>
{
    private static readonly string[] Libraries =
        ["RlhfGym.Models", "RlhfGym.Env", "RlhfGym.PhraseWorld", "RlhfGym.Agents", "RlhfGym.Transport", "RlhfGym.Experiments"];
    private static readonly string[] RuntimePackages = ["libtorch-cpu-linux-x64", "TorchSharp-cuda-linux", "TorchSharp-cpu"];
    private static readonly TimeSpan Minutes5 = TimeSpan.FromMinutes(5);

    [Fact]
    public void Pack_writes_every_library_and_the_tool()
    {
        Assert.True(packed.Pack.ExitCode == 0, packed.Pack.Describe());
        foreach (var id in Libraries.Append("rlhfgym").Append("rlhfgym.linux-x64"))
            Assert.True(File.Exists(packed.Package(id)), $"{packed.Package(id)} missing; feed holds {string.Join(", ", Directory.GetFiles(packed.Feed).Select(Path.GetFileName))}");
    }

    [Fact]
    public void Library_packages_carry_metadata_and_no_libtorch()
    {
        foreach (var id in Libraries)
        {
            using var zip = ZipFile.OpenRead(packed.Package(id));
            var names = zip.Entries.Select(e => e.FullName).ToList();
            Assert.Contains($"lib/net10.0/{id}.dll", names);
            Assert.DoesNotContain(names, n => n.EndsWith(".so", StringComparison.Ordinal) || n.Contains(".so.", StringComparison.Ordinal)
                || n.StartsWith("runtimes/", StringComparison.Ordinal) || n.Contains("libtorch", StringComparison.OrdinalIgnoreCase));
            foreach (var file in new[] { "README.md", "LICENSE", "THIRD-PARTY-NOTICES.md" }) Assert.Contains(file, names);

            var nuspec = Nuspec(zip);
            Assert.Equal(id, Field(nuspec, "id"));
            Assert.Equal("MIT", Field(nuspec, "license"));
            Assert.Equal("expression", nuspec.Descendants().First(e => e.Name.LocalName == "license").Attribute("type")?.Value);
            Assert.Equal("README.md", Field(nuspec, "readme"));
            Assert.False(string.IsNullOrWhiteSpace(Field(nuspec, "description")), $"{id}: no description");
            Assert.False(string.IsNullOrWhiteSpace(nuspec.Descendants().First(e => e.Name.LocalName == "repository").Attribute("url")?.Value));
            var dependencies = nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")!.Value).ToList();
            Assert.DoesNotContain(dependencies, d => RuntimePackages.Contains(d, StringComparer.OrdinalIgnoreCase));
            if (id == "RlhfGym.Models")
            {
                Assert.Contains("TorchSharp", dependencies);
                Assert.Contains("buildTransitive/RlhfGym.Models.targets", names);
                Assert.Contains("buildTransitive/WeakenElfVersionNeed.cs", names);
            }
        }
    }

    [Fact]
    public void Tool_package_brings_the_cpu_libtorch_with_the_native_fix()
    {
        using (var pointer = ZipFile.OpenRead(packed.Package("rlhfgym")))
        {
            var settings = XDocument.Load(pointer.GetEntry("tools/any/any/DotnetToolSettings.xml")!.Open());
            Assert.Equal("rlhfgym", settings.Descendants("Command").Single().Attribute("Name")?.Value);
            Assert.Equal("linux-x64", settings.Descendants("RuntimeIdentifierPackage").Single().Attribute("RuntimeIdentifier")?.Value);
        }
        using var tool = ZipFile.OpenRead(packed.Package("rlhfgym.linux-x64"));
        const string Dir = "tools/net10.0/linux-x64/";
        var names = tool.Entries.Select(e => e.FullName).ToHashSet();
        foreach (var lib in new[] { "libtorch_cpu.so", "libc10.so", "libLibTorchSharp.so", "rlhfgym.dll", "TorchSharp.dll" })
            Assert.Contains(Dir + lib, names);
        string copy = Path.Combine(packed.Root, "libLibTorchSharp-from-tool.so");
        tool.GetEntry(Dir + "libLibTorchSharp.so")!.ExtractToFile(copy, overwrite: true);
        ElfVersionNeeds.AssertGlibcxx3432IsWeak(copy);
    }

    [Fact]
    public void Installed_tool_runs_info_and_env_check()
    {
        string toolPath = Path.Combine(packed.Root, "tools-" + Guid.NewGuid().ToString("N"));
        var install = ProcessRunner.Run("dotnet",
            ["tool", "install", "rlhfgym", "--tool-path", toolPath, "--add-source", packed.Feed, "--version", packed.Version],
            Minutes5, packed.Root, PackedFeed.DotnetEnvironment);
        Assert.True(install.ExitCode == 0, install.Describe());
        string rlhfgym = Path.Combine(toolPath, "rlhfgym");

        var info = ProcessRunner.Run(rlhfgym, ["info", "--json"], Minutes5, packed.Root, PackedFeed.DotnetEnvironment);
        Assert.True(info.ExitCode == 0, info.Describe());
        var json = info.LastJson();
        Assert.Equal(packed.Version, (string?)json["rlhfgym"]);
        Assert.Equal("cpu", (string?)json["backend"]);
        Assert.Equal(2.0, (double)json["probe_sum"]!);

        var environment = new Dictionary<string, string>(PackedFeed.DotnetEnvironment) { ["RLHFGYM_HOME"] = packed.Home };
        var check = ProcessRunner.Run(rlhfgym, ["env", "check", "--env", "PhraseWorld-Segment-v0", "--json"], Minutes5, packed.Root, environment);
        Assert.True(check.ExitCode == 0, check.Describe());
        var report = check.LastJson();
        Assert.True((bool)report["passed"]!);
        Assert.Equal("PhraseWorld-Segment-v0", (string?)report["env"]);
        Assert.Equal("segment", (string?)report["mode"]);
    }

    [Fact]
    public void Console_app_restores_the_libraries_from_the_feed_and_steps_the_env()
    {
        string app = Path.Combine(packed.Root, "app-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(app);
        // The app's own package folder keeps the feed's packages out of the machine-wide cache (a later pack with the
        // same version would otherwise be shadowed); the machine-wide cache is a fallback for TorchSharp and libtorch.
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="rlhfgym-local" value="{packed.Feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "StepOnce.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <RestorePackagesPath>{app}-packages</RestorePackagesPath>
                <RestoreFallbackFolders>{GlobalPackagesFolder()}</RestoreFallbackFolders>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="RlhfGym.PhraseWorld" Version="{packed.Version}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="{LibTorchVersion()}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """"
            using RlhfGym.Env.Core;
            using RlhfGym.PhraseWorld;

            PhraseWorldPlugin.Register();
            using var env = EnvRegistry.Make("PhraseWorld-Segment-v0", numEnvs: 2);
            var reset = env.Reset(seed: 3);
            var step = env.Step(new[] { reset.Prompts[0][^1], reset.Prompts[1][^1] });
            Console.WriteLine($$"""{"num_envs":{{env.Spec.NumEnvs}},"prompt_tokens":{{reset.Prompts[0].Length}},"ref_logprob":{{step.RefLogProb[0]}},"ref_entropy":{{step.RefEntropy[0]}}}""");
            """");
        var environment = new Dictionary<string, string>(PackedFeed.DotnetEnvironment) { ["RLHFGYM_HOME"] = packed.Home };
        var run = ProcessRunner.Run("dotnet", ["run", "-c", "Release"], TimeSpan.FromMinutes(10), app, environment);
        Assert.True(run.ExitCode == 0, run.Describe());
        var json = run.LastJson();
        Assert.Equal(2, (int)json["num_envs"]!);
        double logProb = (double)json["ref_logprob"]!, entropy = (double)json["ref_entropy"]!;
        Assert.True(logProb < 0 && double.IsFinite(logProb), $"ref_logprob {logProb}");
        Assert.True(entropy > 0 && double.IsFinite(entropy), $"ref_entropy {entropy}");
        // The buildTransitive fix from RlhfGym.Models ran in the app's build.
        ElfVersionNeeds.AssertGlibcxx3432IsWeak(Path.Combine(app, "bin", "Release", "net10.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so"));
    }

    private static XElement Nuspec(ZipArchive zip) =>
        XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open()).Root!;

    private static string? Field(XElement nuspec, string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    private static string GlobalPackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } custom
            ? custom
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string LibTorchVersion() =>
        XDocument.Load(RepositoryRoot.File("Directory.Packages.props")).Descendants("LibTorchVersion").Single().Value;
}
