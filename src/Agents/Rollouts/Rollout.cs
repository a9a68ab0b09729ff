namespace RlhfGym.Agents.Rollouts;

/// <summary>One finished episode as the learner sees it. Arrays are per response token.</summary>
public sealed record EpisodeSample(
    int[] Prompt,
    int[] Response,
    /// <summary>Task reward per token from the env (Episode delivery's vector, or what each step paid).</summary>
    float[] TaskRewards,
    /// <summary>log π_ref per token, as the env reported it.</summary>
    float[] RefLogProbs,
    bool Terminated,
    double? Gold,
    /// <summary>Sub-envs sharing a prompt (RLOO groups) share this id.</summary>
    int Group)
{
    /// <summary>
    /// The last response index of each of the env's reward steps (its segments: single tokens in token mode, the
    /// whole response in bandit mode), ascending; empty when the env did not report them.
    /// </summary>
    public int[] StepEnds { get; init; } = [];
}

/// <summary>The episodes of one rollout, plus how long it took.</summary>
public sealed record Rollout(IReadOnlyList<EpisodeSample> Episodes, double Seconds, long EnvSteps, double EnvSeconds)
{
    /// <summary>Episodes a sharded env lost with their server (over every collection this rollout took).</summary>
    public int LostEpisodes { get; init; }
    /// <summary>Sub-envs whose episode is not in <see cref="Episodes"/>: the lost ones and the rest of their groups.</summary>
    public int DroppedEpisodes { get; init; }

    public double MeanLength => Episodes.Average(e => e.Response.Length);
    public double EosRate => Episodes.Average(e => e.Terminated ? 1.0 : 0.0);
    public double MeanTaskReturn => Episodes.Average(e => e.TaskRewards.Sum(v => (double)v));
    public double? MeanGold => Episodes.All(e => e.Gold.HasValue) ? Episodes.Average(e => e.Gold!.Value) : null;
}
