using RlhfGym.Env.Common;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// Makes preference pairs from any source of responses (the behaviour policy, or a trained SFT model): two distinct
/// responses per draw, labelled by a Bradley–Terry draw on the gold-score difference, like noisy human labels.
/// </summary>
public sealed class PreferenceLabeller
{
    private readonly GoldJudge _judge;
    private readonly double _temperature;

    public PreferenceLabeller(World world, double temperature)
    {
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "pair temperature must be > 0");
        _judge = new GoldJudge(world);
        _temperature = temperature;
    }

    public PreferencePair Label(WorldPrompt prompt, int[] a, int[] b, SeededRandom rng)
    {
        double ga = _judge.Judge(prompt, a).Score, gb = _judge.Judge(prompt, b).Score;
        double pA = 1.0 / (1.0 + Math.Exp(-(ga - gb) / _temperature));
        return rng.NextDouble() < pA
            ? new PreferencePair(prompt.Id, prompt.Split, a, b, ga, gb)
            : new PreferencePair(prompt.Id, prompt.Split, b, a, gb, ga);
    }
}
