using System.Diagnostics;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Benchmarks;

/// <summary>
/// The work an env step cannot avoid, timed alone: both models' decode steps for the same tokens, the reference's
/// next-token logits and the reward model's value copied to the host. `bench env` and `bench decode` share it.
/// </summary>
public static class RawDecode
{
    /// <summary>
    /// Prefill both models with the prompts (untimed), then time one decode step of both per entry of steps: at once in
    /// lanes as the env runs them on a CPU, or one after the other when lanes is null.
    /// </summary>
    public static double Seconds(CausalTransformer reference, RewardModel rm, Tensor prompts, ReadOnlySpan<long> lengths, IReadOnlyList<Tensor> steps,
        InferenceLanes? lanes)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        int batch = (int)prompts.shape[0], capacity = (int)prompts.shape[1] + steps.Count + 1;
        using var refCache = reference.NewCache(batch, capacity);
        using var rmCache = rm.Transformer.NewCache(batch, capacity);
        reference.Prefill(prompts, lengths, refCache);
        rm.Transformer.Prefill(prompts, lengths, rmCache);
        var clock = Stopwatch.StartNew();
        foreach (var t in steps)
        {
            if (lanes is not null)
            {
                lanes.Run(() => reference.Logits(reference.DecodeStep(t, refCache)), () => rm.Head.forward(rm.Transformer.DecodeStep(t, rmCache)).cpu());
                continue;
            }
            using var stepScope = NewDisposeScope();
            reference.Logits(reference.DecodeStep(t, refCache));
            rm.Head.forward(rm.Transformer.DecodeStep(t, rmCache)).cpu();
        }
        return clock.Elapsed.TotalSeconds;
    }
}
