using RlhfGym.Env.Bundles;

namespace RlhfGym.Env.Core;

/// <summary>Gymnasium 1.x autoreset modes a vector env can declare.</summary>
public enum AutoresetMode
{
    /// <summary>The step after an episode ends resets that sub-env: its action is ignored, it returns the new prompt
    /// with reward 0 and neither terminated nor truncated.</summary>
    NextStep,
    /// <summary>A finished sub-env stays finished until Reset; its action must be <see cref="EnvSpec.NoAction"/>.</summary>
    Disabled,
}

/// <summary>What an agent needs to know about an env before it starts.</summary>
public sealed record EnvSpec(
    string Id,
    int NumEnvs,
    int VocabSize,
    IReadOnlyList<int> EosIds,
    int PadId,
    int MaxNewTokens,
    AutoresetMode Autoreset,
    EnvOptions Options)
{
    /// <summary>The action of a finished sub-env under <see cref="AutoresetMode.Disabled"/> (and of any sub-env whose
    /// action is ignored).</summary>
    public const int NoAction = -1;

    /// <summary>The longest prompt + response the env's models read in one forward (the smaller of the reference's
    /// and the reward model's max_seq_len): `score` refuses a longer pair. Null when unknown (a server that predates it).</summary>
    public int? MaxSequenceLength { get; init; }
}

/// <summary>What Reset returns: each sub-env's prompt.</summary>
public sealed record ResetResult(int[][] Prompts, string[] PromptIds, string[] PromptTexts);

/// <summary>Options of a Reset call.</summary>
public sealed record ResetOptions
{
    /// <summary>Reset only the sub-envs marked true (the others keep running); null resets all.</summary>
    public bool[]? Mask { get; init; }

    /// <summary>Consecutive blocks of this many sub-envs get the same prompt (k samples per prompt, e.g. for RLOO).
    /// The number of sub-envs (or of masked ones) must be a multiple of it.</summary>
    public int GroupSize { get; init; } = 1;
}

/// <summary>
/// One step's results for every sub-env. The env owns and reuses these arrays (no allocation per step): they are valid
/// until the next Step or Reset; copy what you keep.
/// </summary>
public sealed class StepResult
{
    public StepResult(int numEnvs)
    {
        Rewards = new float[numEnvs];
        Terminated = new bool[numEnvs];
        Truncated = new bool[numEnvs];
        RefEntropy = new float[numEnvs];
        RefLogProb = new float[numEnvs];
        SegmentEnded = new bool[numEnvs];
        RawRead = new float[numEnvs];
        Episodes = new EpisodeRewards?[numEnvs];
        ResetPrompts = new int[]?[numEnvs];
        ResetPromptIds = new string?[numEnvs];
        Lost = new bool[numEnvs];
    }

    /// <summary>Task reward of this step (Episode delivery: the episode total on the final step, else 0).</summary>
    public float[] Rewards { get; }
    /// <summary>The sub-env emitted EOS.</summary>
    public bool[] Terminated { get; }
    /// <summary>The sub-env reached the new-token budget without EOS.</summary>
    public bool[] Truncated { get; }
    /// <summary>Reference LM next-token entropy after this step's token (fp32).</summary>
    public float[] RefEntropy { get; }
    /// <summary>log π_ref(token | prompt, response so far): what KL shaping needs.</summary>
    public float[] RefLogProb { get; }
    /// <summary>A segment closed at this step.</summary>
    public bool[] SegmentEnded { get; }
    /// <summary>The raw reward-model value read at this step (a segment closed), else NaN.</summary>
    public float[] RawRead { get; }
    /// <summary>On the final step of an episode: its per-token rewards, segments, raw and normalized segment rewards.</summary>
    public EpisodeRewards?[] Episodes { get; }
    /// <summary>Under next-step autoreset: the new prompt of a sub-env that was reset by this step, else null.</summary>
    public int[]?[] ResetPrompts { get; }
    public string?[] ResetPromptIds { get; }
    /// <summary>The sub-env's episode was cut short because the server that ran it was lost (a sharded env's failover):
    /// Truncated is true as well, Rewards 0, Episodes null, and there are no rewards to learn from. Never set by an env
    /// that runs its sub-envs itself.</summary>
    public bool[] Lost { get; }

    /// <summary>Back to a step where nothing happened: zeros, false, null, and NaN raw reads.</summary>
    public void Clear()
    {
        Array.Clear(Rewards);
        Array.Clear(Terminated);
        Array.Clear(Truncated);
        Array.Clear(RefEntropy);
        Array.Clear(RefLogProb);
        Array.Clear(SegmentEnded);
        Array.Fill(RawRead, float.NaN);
        Array.Clear(Episodes);
        Array.Clear(ResetPrompts);
        Array.Clear(ResetPromptIds);
        Array.Clear(Lost);
    }
}

/// <summary>
/// A batch of text-generation episodes stepped together, the primary interface (a single env is B = 1). Actions are
/// token ids. Same seed → same prompts and, for the same actions, the same rewards.
/// </summary>
public interface IVectorEnv : IDisposable
{
    EnvSpec Spec { get; }
    ResetResult Reset(long? seed = null, ResetOptions? options = null);
    StepResult Step(ReadOnlySpan<int> actions);
}

/// <summary>An env that can also score finished responses in one full forward each (the fast path for agents that
/// generate elsewhere).</summary>
public interface IScoringEnv
{
    /// <summary>Rewards for finished (prompt, response) pairs. A response is read through its first EOS (what follows is
    /// ignored); one without EOS counts as cut by the budget.</summary>
    IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses);
}
