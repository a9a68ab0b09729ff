namespace RlhfGym.Env.Core;

/// <summary>One step of a single env.</summary>
public readonly record struct SingleStep(float Reward, bool Terminated, bool Truncated, float RefLogProb, float RefEntropy,
    bool SegmentEnded, float RawRead, EpisodeRewards? Episode, int[]? ResetPrompt);

/// <summary>The B = 1 view of a vector env (the vector env is the primary interface).</summary>
public sealed class SingleEnv : IDisposable
{
    private readonly IVectorEnv _env;
    private readonly int[] _action = new int[1];

    public SingleEnv(IVectorEnv env)
    {
        if (env.Spec.NumEnvs != 1) throw new ArgumentException($"a single env wraps a vector env of 1 sub-env, got {env.Spec.NumEnvs}");
        _env = env;
    }

    public EnvSpec Spec => _env.Spec;

    public (int[] Prompt, string PromptId, string PromptText) Reset(long? seed = null)
    {
        var r = _env.Reset(seed);
        return (r.Prompts[0], r.PromptIds[0], r.PromptTexts[0]);
    }

    public SingleStep Step(int action)
    {
        _action[0] = action;
        var r = _env.Step(_action);
        return new SingleStep(r.Rewards[0], r.Terminated[0], r.Truncated[0], r.RefLogProb[0], r.RefEntropy[0], r.SegmentEnded[0],
            r.RawRead[0], r.Episodes[0], r.ResetPrompts[0]);
    }

    public void Dispose() => _env.Dispose();
}
