namespace RlhfGym.Env.Judging;

/// <summary>
/// A judge's verdict on one finished response. The score is for evaluation only and never part of the reward.
/// </summary>
/// <param name="Score">The judge's score (higher is better).</param>
/// <param name="Length">Tokens before the first EOS (the whole response when it has none).</param>
/// <param name="Terminated">The response emitted an EOS.</param>
/// <param name="Units">How many units (phrases, sentences, steps: whatever the judge parses) the response holds; 0
/// when the judge does not parse units.</param>
/// <param name="RepeatedUnits">How many of those units repeat an earlier one.</param>
public sealed record JudgeVerdict(double Score, int Length, bool Terminated, int Units = 0, int RepeatedUnits = 0);

/// <summary>
/// The optional judge an env (through its bundle) may carry: a gold scorer of finished episodes, like PhraseWorld's
/// rule-based judge or an LLM judge. The env core only calls it; worlds implement it and register a loader with
/// <see cref="JudgeRegistry"/>. When an env has a judge, each finished episode's <c>Gold</c> holds its score.
/// </summary>
public interface IEpisodeJudge
{
    /// <summary>Judge a response (token ids, EOS included when emitted) to one of the bundle's prompts.</summary>
    /// <exception cref="KeyNotFoundException">The prompt id is not one the judge knows.</exception>
    JudgeVerdict Judge(string promptId, ReadOnlySpan<int> response);
}
