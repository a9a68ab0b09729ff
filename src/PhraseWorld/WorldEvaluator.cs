using RlhfGym.Env.Judging;

namespace RlhfGym.PhraseWorld;

/// <summary>Held-out evaluation of PhraseWorld responses against a reference's under the gold judge.</summary>
public static class WorldEvaluator
{
    public static JudgedComparison Evaluate(World world, IReadOnlyList<WorldPrompt> prompts, IReadOnlyList<int[]> policy, IReadOnlyList<int[]> reference) =>
        JudgedComparison.Compare(new PhraseWorldJudge(world), prompts.Select(p => p.Id).ToList(), policy, reference);
}
