using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Training;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// A minibatch of episodes as padded tensors aligned with the policy's next-token scores: column t of a (B, W−1)
/// tensor is the score of token t+1, so response token j of episode b sits at column prompt_b − 1 + j.
/// </summary>
internal sealed class SequenceTensors : IDisposable
{
    public SequenceBatch Batch { get; }
    public Tensor Mask { get; }       // (B, W−1): 1 on response tokens
    private readonly IReadOnlyList<EpisodeSample> _episodes;

    public SequenceTensors(IReadOnlyList<EpisodeSample> episodes, int padId, Device device)
    {
        _episodes = episodes;
        Batch = new SequenceBatch(episodes.Select(e => (e.Prompt, e.Response)).ToList(), padId, device);
        Mask = Batch.ResponseTargetMask();
    }

    /// <summary>Lay per-token values of each episode into a (B, W−1) tensor (zeros elsewhere).</summary>
    public Tensor Place(Func<int, float[]> perEpisode)
    {
        int w = Batch.Width - 1;
        var data = new float[_episodes.Count * w];
        for (int b = 0; b < _episodes.Count; b++)
        {
            var values = perEpisode(b);
            int start = Batch.PromptLengths[b] - 1;
            for (int j = 0; j < values.Length; j++) data[b * w + start + j] = values[j];
        }
        return tensor(data, [_episodes.Count, w], ScalarType.Float32, Batch.Tokens.device);
    }

    /// <summary>Read each episode's response positions back out of a (B, W−1) tensor.</summary>
    public float[][] Take(Tensor t)
    {
        int w = Batch.Width - 1;
        var host = t.to_type(ScalarType.Float32).cpu().data<float>().ToArray();
        var result = new float[_episodes.Count][];
        for (int b = 0; b < _episodes.Count; b++)
            result[b] = host.AsSpan(b * w + Batch.PromptLengths[b] - 1, _episodes[b].Response.Length).ToArray();
        return result;
    }

    public void Dispose()
    {
        Batch.Dispose();
        Mask.Dispose();
    }
}
