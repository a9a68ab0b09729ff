using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Judging;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Generation;
using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Evaluation;

/// <summary>
/// Evaluates a policy against the reference (SFT) model under an env's judge: both sample every held-out prompt the
/// same number of times, and the judge compares them pair by pair (<see cref="JudgedComparison"/>).
/// </summary>
public sealed class JudgePolicyEvaluator : IPolicyEvaluator
{
    private readonly IEpisodeJudge _judge;
    private readonly IReadOnlyList<BundlePrompt> _prompts;
    private readonly string _referenceDir;
    private readonly int _eosId, _maxNewTokens;
    private readonly Device _device;

    /// <param name="prompts">Held-out prompts (a bundle's test split).</param>
    /// <param name="referenceDir">The model the policy is compared with (the SFT model).</param>
    public JudgePolicyEvaluator(IEpisodeJudge judge, IReadOnlyList<BundlePrompt> prompts, string referenceDir, int eosId, int maxNewTokens, Device device)
    {
        if (prompts.Count == 0) throw new ArgumentException("no held-out prompts to evaluate on");
        _judge = judge;
        _prompts = prompts;
        _referenceDir = referenceDir;
        _eosId = eosId;
        _maxNewTokens = maxNewTokens;
        _device = device;
    }

    /// <summary>The evaluator of a bundle's judge on its test prompts, or null when the bundle has no judge.</summary>
    public static JudgePolicyEvaluator? ForBundle(EnvBundle bundle, int maxNewTokens, Device device) =>
        bundle.Judge is { } judge
            ? new JudgePolicyEvaluator(judge, bundle.Prompts.Where(p => p.Split == "test").ToList(), Path.Combine(bundle.Directory, EnvBundle.ReferenceDir),
                bundle.EosIds[0], maxNewTokens, device)
            : null;

    public JsonObject Evaluate(CausalTransformer policy, int samplesPerPrompt, long seed)
    {
        var (reference, _) = ModelCheckpoint.Load(_referenceDir, _device);
        using (reference)
        {
            reference.eval();
            var prompts = _prompts.SelectMany(p => Enumerable.Repeat(p, samplesPerPrompt)).ToList();
            var tokens = prompts.Select(p => p.Tokens).ToList();
            var mine = TextGenerator.SampleInBatches(policy, tokens, _maxNewTokens, seed * 13 + 5, _eosId);
            var theirs = TextGenerator.SampleInBatches(reference, tokens, _maxNewTokens, seed * 13 + 6, _eosId);
            var e = JudgedComparison.Compare(_judge, prompts.Select(p => p.Id).ToList(), mine, theirs);
            return new JsonObject
            {
                ["gold_score_policy"] = Math.Round(e.MeanGold, 4),
                ["gold_score_sft"] = Math.Round(e.ReferenceMeanGold, 4),
                ["gold_score"] = Math.Round(e.MeanGold, 4),
                ["win_rate_vs_sft"] = Math.Round(e.WinRateVsReference, 4),
                ["lc_win_rate"] = e.LcWinRateVsReference is { } lc ? Math.Round(lc, 4) : null,
                ["lc_glm_failed"] = e.LengthControlled.GlmFailed,
                ["eval_length"] = Math.Round(e.MeanLength, 3),
                ["eval_eos_rate"] = Math.Round(e.EosRate, 4),
                ["eval_repetition_rate"] = Math.Round(e.RepetitionRate, 4),
            };
        }
    }
}
