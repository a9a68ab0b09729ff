using RlhfGym.Env.Common;

namespace RlhfGym.PhraseWorld;

/// <summary>
/// The data-generating behaviour the SFT model imitates: a mix of good and bad phrases around the style's ideal
/// count, so an RL policy has real headroom over SFT. Probabilities are public so docs and tests can quote them.
/// </summary>
public sealed class BehaviourPolicy
{
    public double PInformative { get; init; } = 0.5;
    public double PFiller { get; init; } = 0.2;
    public double POffTopic { get; init; } = 0.15;   // the rest is wrong phrases of the prompt's topic
    public double PClosing { get; init; } = 0.5;
    public int MinExtra { get; init; } = -1;          // content phrases = ideal + U{MinExtra..MaxExtra}, at least 1
    public int MaxExtra { get; init; } = 2;

    private readonly World _world;
    private readonly Phrase[][] _informative, _wrong;
    private readonly Phrase[] _fillers, _closings;

    public BehaviourPolicy(World world)
    {
        _world = world;
        _informative = Enumerable.Range(0, world.Topics.Count).Select(t => world.OfKind(PhraseKind.Informative, t).ToArray()).ToArray();
        _wrong = Enumerable.Range(0, world.Topics.Count).Select(t => world.OfKind(PhraseKind.Wrong, t).ToArray()).ToArray();
        _fillers = world.OfKind(PhraseKind.Filler).ToArray();
        _closings = world.OfKind(PhraseKind.Closing).ToArray();
    }

    /// <summary>One response (token ids, ending with EOS).</summary>
    public int[] Sample(WorldPrompt prompt, SeededRandom rng)
    {
        var tokens = new List<int>();
        int n = Math.Max(1, prompt.Ideal + MinExtra + rng.Next(MaxExtra - MinExtra + 1));
        Phrase? next = null;
        for (int k = 0; k < n; k++)
        {
            Phrase phrase;
            if (next is not null)
            {
                // A boundary-noise world's collocation: the head's partner follows, with no fresh choice.
                phrase = next;
                next = null;
                tokens.AddRange(phrase.Tokens);
                continue;
            }
            double u = rng.NextDouble();
            if (u < PInformative) phrase = rng.Pick(_informative[prompt.Topic]);
            else if (u < PInformative + PFiller) phrase = rng.Pick(_fillers);
            else if (u < PInformative + PFiller + POffTopic)
            {
                int other = (prompt.Topic + 1 + rng.Next(_world.Topics.Count - 1)) % _world.Topics.Count;
                phrase = rng.Pick(_informative[other]);
            }
            else phrase = rng.Pick(_wrong[prompt.Topic]);
            tokens.AddRange(phrase.Tokens);
            // Only a collocation head draws here, so a v0 world's random stream is untouched.
            if (_world.CollocationPartner(phrase) is { } partner && k + 1 < n && rng.NextDouble() < WorldDials.CollocationProbability)
                next = partner;
        }
        if (rng.NextDouble() < PClosing) tokens.AddRange(rng.Pick(_closings).Tokens);
        tokens.Add(_world.EosId);
        return tokens.ToArray();
    }
}
