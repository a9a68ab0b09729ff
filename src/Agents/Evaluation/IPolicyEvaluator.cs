using System.Text.Json.Nodes;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Agents.Evaluation;

/// <summary>
/// Held-out evaluation of a policy, injected into the trainer (which calls it every EvalEvery iterations and at the
/// end) so the trainer itself knows nothing about any world or judge.
/// </summary>
public interface IPolicyEvaluator
{
    /// <summary>The evaluation's figures (e.g. gold_score, win_rate_vs_sft); merged into the metrics row and the summary.</summary>
    JsonObject Evaluate(CausalTransformer policy, int samplesPerPrompt, long seed);
}
