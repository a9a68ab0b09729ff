using RlhfGym.Env.Rewards;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// Algorithms by name, like the env registry: <see cref="Training.TrainerOptions.Algorithm"/> (and `rlhfgym train
/// --agent`, and compare cells) name one, and the trainer builds it from its factory. ppo, reinforce, grpo (and its
/// variants grpo-process, dr-grpo, dr-grpo-process) are built in;
/// <see cref="Register"/> adds your own, which then trains with the same loop, metrics, checkpoints and resume.
/// </summary>
public static class AlgorithmRegistry
{
    private static readonly object Gate = new();
    private static readonly List<(string Name, Func<AlgorithmContext, IAlgorithm> Factory)> Entries =
    [
        ("ppo", CreatePpo),
        ("reinforce", CreateReinforce),
        ("grpo", c => CreateGrpo(c, c.Options.Grpo)),
        // The variants by name, so a compare cell (which names only an algorithm) can pick them.
        ("grpo-process", c => CreateGrpo(c, c.Options.Grpo with { Variant = GrpoVariant.Process })),
        ("dr-grpo", c => CreateGrpo(c, c.Options.Grpo.AsDrGrpo())),
        ("dr-grpo-process", c => CreateGrpo(c, c.Options.Grpo.AsDrGrpo() with { Variant = GrpoVariant.Process })),
    ];

    /// <summary>Registered names, built-ins first, then in registration order.</summary>
    public static IReadOnlyList<string> Names
    {
        get { lock (Gate) return Entries.Select(e => e.Name).ToList(); }
    }

    /// <summary>Add an algorithm under <paramref name="name"/>; registering a name again replaces its factory.</summary>
    public static void Register(string name, Func<AlgorithmContext, IAlgorithm> factory)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ArgumentException("an algorithm needs a non-empty name", nameof(name));
        ArgumentNullException.ThrowIfNull(factory);
        lock (Gate)
        {
            int i = Entries.FindIndex(e => e.Name == name);
            if (i >= 0) Entries[i] = (name, factory);
            else Entries.Add((name, factory));
        }
    }

    public static bool Contains(string name)
    {
        lock (Gate) return Entries.Any(e => e.Name == name);
    }

    /// <summary>Throws an <see cref="ArgumentException"/> that lists the registered names unless <paramref name="name"/> is one.</summary>
    public static void Validate(string name)
    {
        if (!Contains(name)) throw Unknown(name);
    }

    private static ArgumentException Unknown(string name) => new($"algorithm must be {Describe()} (the registered algorithms); got '{name}'");

    /// <summary>The registered names as prose: "ppo or reinforce", "ppo, reinforce or best-of-k".</summary>
    public static string Describe()
    {
        var names = Names;
        return names.Count == 1 ? names[0] : $"{string.Join(", ", names.Take(names.Count - 1))} or {names[^1]}";
    }

    /// <summary>The assembly that registered <paramref name="name"/>'s factory (a plugin's, or this library's).</summary>
    public static System.Reflection.Assembly AssemblyOf(string name) => Factory(name).Method.Module.Assembly;

    public static IAlgorithm Create(string name, AlgorithmContext context) => Factory(name)(context);

    private static Func<AlgorithmContext, IAlgorithm> Factory(string name)
    {
        lock (Gate) return Entries.FirstOrDefault(e => e.Name == name).Factory ?? throw Unknown(name);
    }

    private static IAlgorithm CreatePpo(AlgorithmContext c)
    {
        random.manual_seed(c.Options.Seed); // the critic's fresh head is the same for the same seed
        var critic = RewardModel.FromSft(c.InitDir, c.Device); // critic: the SFT transformer with a fresh scalar head
        var ppo = c.Options.Ppo with { ValueClip = c.Env.Options.Reading.Mode == RewardMode.Bandit ? 0.2 : c.Options.Ppo.ValueClip };
        return new Ppo(c.Policy, critic, ppo, c.Env.PadId, c.Options.Seed);
    }

    private static IAlgorithm CreateGrpo(AlgorithmContext c, GrpoOptions o)
    {
        o.Validate();
        if (c.Env.NumEnvs % o.GroupSize != 0)
            throw new ArgumentException($"GRPO with group size G = {o.GroupSize} needs a number of sub-envs divisible by G, got {c.Env.NumEnvs}");
        return new Grpo(c.Policy, o, c.Env.PadId, c.Env.MaxNewTokens, c.Options.Seed);
    }

    private static IAlgorithm CreateReinforce(AlgorithmContext c)
    {
        var o = c.Options.Reinforce;
        if (o.Baseline == ReinforceBaseline.Rloo && o.K < 2)
            throw new ArgumentException($"RLOO needs k >= 2 samples per prompt (--k), got {o.K}: the baseline leaves one out");
        if (o.Baseline == ReinforceBaseline.Rloo && c.Env.NumEnvs % o.K != 0)
            throw new ArgumentException($"RLOO with k = {o.K} needs a number of sub-envs divisible by k, got {c.Env.NumEnvs}");
        return new Reinforce(c.Policy, o, c.Env.PadId, c.Options.Seed);
    }
}
