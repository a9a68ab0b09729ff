using System.Reflection;

namespace RlhfGym.Cli.Tests;

/// <summary>The dependency direction of docs/architecture.md: Models ← Env ← {PhraseWorld, Agents, Transport}.</summary>
public class ArchitectureTests
{
    private static HashSet<string> References(string assembly) =>
        Assembly.Load(assembly).GetReferencedAssemblies().Select(a => a.Name!).Where(n => n.StartsWith("RlhfGym.")).ToHashSet();

    [Theory]
    [InlineData("RlhfGym.Models", new string[0])]
    [InlineData("RlhfGym.Env", new[] { "RlhfGym.Models" })]
    [InlineData("RlhfGym.PhraseWorld", new[] { "RlhfGym.Env", "RlhfGym.Models" })]
    [InlineData("RlhfGym.Agents", new[] { "RlhfGym.Env", "RlhfGym.Models" })]
    [InlineData("RlhfGym.Transport", new[] { "RlhfGym.Env", "RlhfGym.Models" })]
    public void Libraries_reference_only_the_layers_below_them(string assembly, string[] allowed)
    {
        var extra = References(assembly).Except(allowed).ToList();
        Assert.True(extra.Count == 0, $"{assembly} references {string.Join(", ", extra)}");
    }
}
