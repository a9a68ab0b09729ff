using RlhfGym.Env.Common;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// Makes preference pairs from any source of responses (the behaviour policy, or a trained SFT model): two distinct
/// responses per draw, labelled by a Bradley–Terry draw on the gold-score difference, like noisy human labels (in a
/// verbosity-bias world, on the gold difference plus a bonus for the longer response).
/// </summary>
public sealed class PreferenceLabeller
{
    private readonly GoldJudge _judge;
    private readonly double _temperature;
    private readonly double _verbosityBias;

    public PreferenceLabeller(World world, double temperature)
    {
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "pair temperature must be > 0");
        _judge = new GoldJudge(world);
        _temperature = temperature;
        _verbosityBias = world.Dials.VerbosityBias;
    }

    public PreferencePair Label(WorldPrompt prompt, int[] a, int[] b, SeededRandom rng)
    {
        var va = _judge.Judge(prompt, a);
        var vb = _judge.Judge(prompt, b);
        double ga = va.Score, gb = vb.Score;
        // A verbosity-bias world's labeller also likes length: b gold per token of difference (0 in v0).
        double margin = _verbosityBias == 0 ? ga - gb : ga - gb + _verbosityBias * (va.Length - vb.Length);
        double pA = 1.0 / (1.0 + Math.Exp(-margin / _temperature));
        return rng.NextDouble() < pA
            ? new PreferencePair(prompt.Id, prompt.Split, a, b, ga, gb)
            : new PreferencePair(prompt.Id, prompt.Split, b, a, gb, ga);
    }
}
