namespace RlhfGym.Env.Common;

/// <summary>Rounds to significant digits, for figures that span decades (a KL of 1e-4 or 85; a TFLOP/s of 0.0004 or 400).</summary>
public static class SignificantDigits
{
    /// <summary>4 significant digits by default: 0.00012 stays positive (a log scale needs it), 85.5583 keeps 85.56.</summary>
    public static double Round(double v, int digits = 4) =>
        v == 0 || !double.IsFinite(v) ? v : Math.Round(v, Math.Clamp(digits - 1 - (int)Math.Floor(Math.Log10(Math.Abs(v))), 0, 15));
}
