using RlhfGym.Env.Judging;

namespace RlhfGym.PhraseWorld;

/// <summary>PhraseWorld's <see cref="GoldJudge"/> behind the env core's judge contract: prompts by id, units are phrases.</summary>
public sealed class PhraseWorldJudge(World world) : IEpisodeJudge
{
    private readonly GoldJudge _judge = new(world);
    private readonly Dictionary<string, WorldPrompt> _prompts = world.Prompts.ToDictionary(p => p.Id);

    public World World { get; } = world;

    /// <summary>The judge of the world stored in a bundle (or world) directory.</summary>
    public static PhraseWorldJudge Load(string directory) => new(WorldStore.Load(directory));

    public JudgeVerdict Judge(string promptId, ReadOnlySpan<int> response)
    {
        var prompt = _prompts.TryGetValue(promptId, out var p) ? p : throw new KeyNotFoundException($"prompt '{promptId}' is not in this world");
        var verdict = _judge.Judge(prompt, response);
        return new JudgeVerdict(verdict.Score, verdict.Length, verdict.Terminated,
            Units: verdict.Spans.Count(s => s.PhraseId >= 0), RepeatedUnits: verdict.Repeats);
    }
}
