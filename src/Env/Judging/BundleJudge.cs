namespace RlhfGym.Env.Judging;

/// <summary>
/// How a judge travels in an env bundle: the file env.json's <c>gold_judge</c> names (the key its loader is registered
/// under in <see cref="JudgeRegistry"/>) and a writer that puts the judge's files into a bundle directory.
/// </summary>
public sealed record BundleJudge(string File, Action<string> WriteInto);
