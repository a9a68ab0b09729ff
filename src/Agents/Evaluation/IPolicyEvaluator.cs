using System.Text.Json.Nodes;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Agents.Evaluation;

/// <summary>
/// Held-out evaluation the trainer runs every few iterations and at the end, injected so the trainer sees only the env
/// contract. Its figures are merged into metrics.jsonl and the run summary under the names it returns.
/// </summary>
public interface IPolicyEvaluator
{
    /// <param name="policy">The current policy (read only; the evaluator must not change it).</param>
    /// <param name="samplesPerPrompt">Responses sampled per held-out prompt.</param>
    /// <param name="seed">Seeds every sample the evaluation draws, so the same seed gives the same figures.</param>
    JsonObject Evaluate(CausalTransformer policy, int samplesPerPrompt, long seed);
}
