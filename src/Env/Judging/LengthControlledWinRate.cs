namespace RlhfGym.Env.Judging;

/// <summary>
/// AlpacaEval 2's length-controlled win rate (Dubois et al., 2024), as far as it applies to one policy against one
/// reference under a deterministic judge: "what would the win rate be if both responses had the same length?"
/// </summary>
/// <remarks>
/// The GLM, as alpaca_eval's <c>length_controlled_v1</c> fits it: P(win_i) = σ(θ + φ·tanh(Δ_i / sd(Δ))), where Δ_i is
/// the policy's length minus the reference's on prompt i and sd the sample standard deviation of Δ. There is no free
/// intercept besides θ, the policy's own term; the length feature is bounded by tanh, so reading the fit at Δ = 0 can
/// move the win rate only as far as the bounded feature explains it. The length-controlled win rate is σ(θ).
///
/// Differences from alpaca_eval, because what they need does not exist here: no instruction-difficulty term (it is
/// estimated from many models' annotations of the same prompts), no "gamed" baselines (the reference prompted to be
/// verbose or concise), and a fixed L2 penalty with C = 100 (alpaca_eval's C when it does not cross-validate; it
/// cross-validates an L1 penalty). Targets are fractional (a tie is ½), as alpaca_eval's preferences are.
///
/// AlpacaEval flags "a sign of failure of the GLM" when LC moves too far from the raw win rate WR: above
/// max(WR + (1 − WR)/4, WR + 0.10) or below min(WR − WR/4, WR − 0.10). Here such a fit is not reported: the value is
/// null and <see cref="GlmFailed"/> is set; so is a fit whose Newton iterations did not converge in 100 steps.
/// </remarks>
public sealed record LengthControlledWinRate(double? Value, bool GlmFailed, double ModelCoef, double LengthCoef)
{
    /// <summary>The L2 penalty's C (the loss is summed over comparisons, the penalty is (θ² + φ²) / 2C).</summary>
    public const double C = 100;

    /// <summary>Fits the GLM to per-prompt outcomes (1 win, ½ tie, 0 loss) and length differences (policy − reference).</summary>
    public static LengthControlledWinRate Fit(IReadOnlyList<double> wins, IReadOnlyList<double> lengthDiff)
    {
        if (wins.Count == 0 || wins.Count != lengthDiff.Count)
            throw new ArgumentException($"need one outcome per length difference (got {wins.Count} outcomes, {lengthDiff.Count} differences)");
        if (wins.Any(w => !(w >= 0 && w <= 1))) throw new ArgumentOutOfRangeException(nameof(wins), "outcomes must lie in [0, 1]");
        int n = wins.Count;
        double mean = lengthDiff.Average();
        double sd = n > 1 ? Math.Sqrt(lengthDiff.Sum(d => (d - mean) * (d - mean)) / (n - 1)) : 0;
        var z = lengthDiff.Select(d => sd > 0 ? Math.Tanh(d / sd) : 0.0).ToArray();

        // Newton's method on the penalised log-likelihood: two parameters, a convex objective.
        double theta = 0, phi = 0;
        const double lambda = 1 / C;
        bool converged = false;
        for (int iter = 0; iter < 100 && !converged; iter++)
        {
            double g0 = -lambda * theta, g1 = -lambda * phi, h00 = lambda, h01 = 0, h11 = lambda;
            for (int i = 0; i < n; i++)
            {
                double p = 1 / (1 + Math.Exp(-(theta + phi * z[i])));
                double r = wins[i] - p, w = p * (1 - p);
                g0 += r;
                g1 += r * z[i];
                h00 += w;
                h01 += w * z[i];
                h11 += w * z[i] * z[i];
            }
            double det = h00 * h11 - h01 * h01;
            double d0 = (h11 * g0 - h01 * g1) / det, d1 = (h00 * g1 - h01 * g0) / det;
            // A bounded step: far from the optimum on nearly separable data a full step can overshoot.
            theta += Math.Clamp(d0, -5, 5);
            phi += Math.Clamp(d1, -5, 5);
            converged = Math.Abs(d0) + Math.Abs(d1) < 1e-12;
        }
        double lc = 1 / (1 + Math.Exp(-theta));
        // A fit that did not converge is reported as failed, like one beyond AlpacaEval's bound.
        bool failed = !converged || IsExtremeChange(wins.Average(), lc);
        return new LengthControlledWinRate(failed ? null : lc, failed, theta, phi);
    }

    /// <summary>How a table shows a length-controlled win rate read from JSON: the number, or why there is none.</summary>
    public static string Text(System.Text.Json.Nodes.JsonNode? lc) => lc?.ToJsonString() ?? "– (GLM failed)";

    /// <summary>
    /// AlpacaEval's check for a failed GLM (win rates in [0, 1]): LC above max(WR + (1 − WR)/4, WR + 0.10) or below
    /// min(WR − WR/4, WR − 0.10).
    /// </summary>
    public static bool IsExtremeChange(double winRate, double lc) =>
        lc > Math.Max(winRate + (1 - winRate) / 4, winRate + 0.10) || lc < Math.Min(winRate - winRate / 4, winRate - 0.10);
}
