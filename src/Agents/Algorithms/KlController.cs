namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// The KL coefficient β of the shaping R_t = r_t − β(log π_old − log π_ref): fixed (the paper: 0.01), or adaptive
/// toward a target KL per episode (Ziegler et al.): β ← β·(1 + clip(KL/target − 1, ±0.2)·n/horizon).
/// </summary>
public sealed class KlController
{
    public double Coef { get; private set; }
    public double? Target { get; }
    public double Horizon { get; }

    public KlController(double coef, double? target = null, double horizon = 10000)
    {
        if (!(coef >= 0) || double.IsInfinity(coef)) throw new ArgumentOutOfRangeException(nameof(coef), coef, "KL coefficient must be a finite number >= 0");
        if (target is { } t && !(t > 0)) throw new ArgumentOutOfRangeException(nameof(target), t, "KL target must be > 0");
        Coef = coef;
        Target = target;
        Horizon = horizon;
    }

    /// <summary>After a rollout whose mean per-episode KL was <paramref name="kl"/> over <paramref name="episodes"/> episodes.</summary>
    public void Update(double kl, int episodes)
    {
        if (Target is not { } target) return;
        double error = Math.Clamp(kl / target - 1, -0.2, 0.2);
        Coef *= 1 + error * episodes / Horizon;
    }

    public void Restore(double coef) => Coef = coef;
}
