using RlhfGym.Env.PhraseWorld;

namespace RlhfGym.Env.Tests;

internal static class TestWorlds
{
    public static readonly World Seed1 = WorldBuilder.Build(1);

    public static readonly DatasetSizes Small = new()
    {
        SftPerTrainPrompt = 3,
        SftPerValidationPrompt = 2,
        PairsPerTrainPrompt = 2,
        PairsPerValidationPrompt = 1,
    };

    public static int[] Tokens(World world, string text) => world.Tokenizer.Encode(text);
}

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
}
