namespace RlhfGym.Env.Training;

/// <summary>Linear warm-up then cosine decay to a floor: lr(step) as a fraction of the peak.</summary>
public static class LearningRateSchedule
{
    public static double WarmupCosine(int step, int totalSteps, double warmupFraction, double minRatio)
    {
        int warmup = Math.Max(1, (int)Math.Round(totalSteps * warmupFraction));
        if (step < warmup) return (step + 1.0) / warmup;
        double progress = Math.Min(1.0, (step - warmup) / (double)Math.Max(1, totalSteps - warmup));
        return minRatio + (1 - minRatio) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
