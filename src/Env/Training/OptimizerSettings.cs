using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Env.Training;

/// <summary>
/// The optimisation settings every trainer here shares (SFT, reward models): AdamW, linear warm-up then cosine decay to
/// a floor, gradient clipping, epochs over shuffled minibatches, a seed. Trainers derive their own defaults.
/// </summary>
public record OptimizerSettings
{
    public int Epochs { get; init; } = 1;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    public double WarmupFraction { get; init; } = 0.03;
    public double MinLearningRateRatio { get; init; } = 0.1;
    public (double, double) Betas { get; init; } = (0.9, 0.999);
    public double WeightDecay { get; init; }
    public double GradClip { get; init; } = 1.0;
    public long Seed { get; init; } = 1;

    public void Validate()
    {
        if (Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be > 0");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be > 0");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "learning rate must be a finite number > 0");
        if (!(GradClip > 0)) throw new ArgumentOutOfRangeException(nameof(GradClip), GradClip, "gradient clip must be > 0");
    }

    public AdamW CreateOptimizer(IEnumerable<Parameter> parameters) =>
        optim.AdamW(parameters, lr: LearningRate, beta1: Betas.Item1, beta2: Betas.Item2, weight_decay: WeightDecay);

    /// <summary>Set the learning rate for this step of the warm-up + cosine schedule.</summary>
    public void ScheduleLearningRate(AdamW optimizer, int step, int totalSteps)
    {
        double lr = LearningRate * LearningRateSchedule.WarmupCosine(step, totalSteps, WarmupFraction, MinLearningRateRatio);
        foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
    }
}
