using RlhfGym.PhraseWorld;

namespace RlhfGym.Tests;

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
