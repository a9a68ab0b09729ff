using System.Text.Json.Nodes;
using RlhfGym.Env.PhraseWorld;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Evaluation;

/// <summary>
/// Held-out evaluation against the SFT model under a world's gold judge: the policy and the SFT model each answer the
/// world's test prompts, and the judge scores both (gold score, win rate, length-controlled win rate, ...).
/// </summary>
/// <param name="initDir">The SFT model the policy is compared with.</param>
/// <param name="maxNewTokens">The new-token budget of each answer (the env's).</param>
public sealed class WorldPolicyEvaluator(World world, string initDir, Device device, int maxNewTokens) : IPolicyEvaluator
{
    public JsonObject Evaluate(CausalTransformer policy, int samplesPerPrompt, long seed)
    {
        var (sft, _) = ModelCheckpoint.Load(initDir, device);
        using (sft)
        {
            sft.eval();
            var prompts = world.Split("test").SelectMany(p => Enumerable.Repeat(p, samplesPerPrompt)).ToList();
            var mine = PhraseWorldSft.Sample(policy, world, prompts, seed * 13 + 5, maxNewTokens: maxNewTokens);
            var theirs = PhraseWorldSft.Sample(sft, world, prompts, seed * 13 + 6, maxNewTokens: maxNewTokens);
            var e = WorldEvaluator.Evaluate(world, prompts, mine, theirs);
            return new JsonObject
            {
                ["gold_score_policy"] = Math.Round(e.MeanGold, 4),
                ["gold_score_sft"] = Math.Round(e.ReferenceMeanGold, 4),
                ["gold_score"] = Math.Round(e.MeanGold, 4),
                ["win_rate_vs_sft"] = Math.Round(e.WinRateVsReference, 4),
                ["lc_win_rate"] = Math.Round(e.LcWinRateVsReference, 4),
                ["eval_length"] = Math.Round(e.MeanLength, 3),
                ["eval_eos_rate"] = Math.Round(e.EosRate, 4),
                ["eval_repetition_rate"] = Math.Round(e.RepetitionRate, 4),
            };
        }
    }
}
