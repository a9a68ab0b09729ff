using System.Text.Json.Nodes;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Common;
using RlhfGym.Env.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

public enum ReinforceBaseline { None, MovingAverage, Rloo }

public sealed record ReinforceOptions
{
    public ReinforceBaseline Baseline { get; init; } = ReinforceBaseline.Rloo;
    /// <summary>Samples per prompt for RLOO.</summary>
    public int K { get; init; } = 4;
    public double MovingAverageDecay { get; init; } = 0.9;
    public int MiniBatchSize { get; init; } = 32;
    public OptimizerSettings Actor { get; init; } = new() { LearningRate = 2e-4, WarmupFraction = 0.05, Betas = (0.9, 0.95) };
}

/// <summary>
/// REINFORCE on the same shaped per-token rewards as PPO: the advantage of token t is its reward-to-go
/// G_t = Σ_{t'≥t} R_t' minus a baseline that does not depend on the episode's own actions — none, a moving average of
/// episode returns, or RLOO (the mean return of the other k − 1 samples of the same prompt). One pass over the rollout
/// in minibatches; loss = −mean over sequences of the masked mean of A_t · log π(y_t).
/// </summary>
public sealed class Reinforce : IAlgorithm
{
    public string Name => "reinforce";
    public int GroupSize => _o.Baseline == ReinforceBaseline.Rloo ? _o.K : 1;

    private readonly PolicyModel _policy;
    private readonly ReinforceOptions _o;
    private readonly int _padId;
    private readonly long _seed;
    private readonly AdamW _opt;
    private double? _movingAverage;
    private int _step;

    public Reinforce(PolicyModel policy, ReinforceOptions options, int padId, long seed)
    {
        if (options.Baseline == ReinforceBaseline.Rloo && options.K < 2) throw new ArgumentOutOfRangeException(nameof(options), options.K, "RLOO needs k >= 2 samples per prompt");
        _policy = policy;
        _o = options;
        _o.Actor.Validate();
        _padId = padId;
        _seed = seed;
        _opt = _o.Actor.CreateOptimizer(policy.Model.parameters());
    }

    public UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations)
    {
        var episodes = rollout.Episodes;
        var device = _policy.Model.Device;
        var (oldLogProbs, entropy) = RolloutScoring.Score(_policy, episodes, _padId);

        var shaping = KlShaping.Shape(episodes, oldLogProbs, klCoef, sumKlBackward: true);
        var toGo = new float[episodes.Count][];
        var totals = new double[episodes.Count];
        for (int b = 0; b < episodes.Count; b++)
        {
            toGo[b] = new float[episodes[b].Response.Length];
            double running = 0;
            for (int t = toGo[b].Length - 1; t >= 0; t--)
            {
                running += shaping.Rewards[b][t];
                toGo[b][t] = (float)running;
            }
            totals[b] = running;
        }
        var baselines = Baselines(episodes, totals);
        var advantages = toGo.Select((g, b) => g.Select(v => (float)(v - baselines[b])).ToArray()).ToArray();
        _movingAverage = _movingAverage is { } m ? _o.MovingAverageDecay * m + (1 - _o.MovingAverageDecay) * totals.Average() : totals.Average();

        int miniBatches = (episodes.Count + _o.MiniBatchSize - 1) / _o.MiniBatchSize;
        var rng = new SeededRandom(_seed * 1_000_003 + iteration);
        var order = Enumerable.Range(0, episodes.Count).ToArray();
        rng.Shuffle(order);
        double loss = 0;
        int updates = 0;
        _policy.Model.train();
        for (int start = 0; start < order.Length; start += _o.MiniBatchSize, _step++, updates++)
        {
            var idx = order.Skip(start).Take(_o.MiniBatchSize).ToArray();
            using var scope = NewDisposeScope();
            using var mb = new SequenceTensors(idx.Select(i => episodes[i]).ToList(), _padId, device);
            var adv = mb.Place(k => advantages[idx[k]]);
            _o.Actor.ScheduleLearningRate(_opt, _step, totalIterations * miniBatches);
            _opt.zero_grad();
            var l = PpoLosses.MaskedMeanPerSequence(-adv * _policy.NextTokenLogProbs(mb.Batch), mb.Mask).mean();
            l.backward();
            nn.utils.clip_grad_norm_(_policy.Model.parameters(), _o.Actor.GradClip);
            _opt.step();
            loss += l.item<float>();
        }
        _policy.Model.eval();
        return new UpdateStats(new Dictionary<string, double>
        {
            [UpdateStats.PolicyLoss] = loss / updates,
            [UpdateStats.PolicyEntropy] = entropy,
            [UpdateStats.Kl] = shaping.Kl,
            [UpdateStats.ShapedReward] = totals.Average(),
        });
    }

    private double[] Baselines(IReadOnlyList<EpisodeSample> episodes, double[] totals)
    {
        switch (_o.Baseline)
        {
            case ReinforceBaseline.None:
                return new double[episodes.Count];
            case ReinforceBaseline.MovingAverage:
                return Enumerable.Repeat(_movingAverage ?? 0, episodes.Count).ToArray();
            default:
                var result = new double[episodes.Count];
                foreach (var group in Enumerable.Range(0, episodes.Count).GroupBy(b => episodes[b].Group))
                {
                    var members = group.ToArray();
                    if (members.Length < 2) throw new InvalidOperationException($"RLOO group {group.Key} has {members.Length} sample; the rollout must use k >= 2 sub-envs per prompt");
                    var b = Advantages.LeaveOneOutBaselines(members.Select(i => totals[i]).ToList());
                    for (int i = 0; i < members.Length; i++) result[members[i]] = b[i];
                }
                return result;
        }
    }

    public void SaveState(string directory)
    {
        _opt.save_state_dict(Path.Combine(directory, "actor_optimizer.bin"));
        File.WriteAllText(Path.Combine(directory, "reinforce.json"),
            $"{{\"step\":{_step},\"moving_average\":{(_movingAverage is { } m ? m.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "null")}}}");
    }

    public void LoadState(string directory)
    {
        AlgorithmState.LoadOptimizer(_opt, Path.Combine(directory, "actor_optimizer.bin"));
        string path = Path.Combine(directory, "reinforce.json");
        (var json, _step) = AlgorithmState.Read(path);
        _movingAverage = json["moving_average"] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<double>(out double m) && double.IsFinite(m) => m,
            var other => throw new InvalidDataException($"{path}: field 'moving_average' must be a finite number or null, got {other.ToJsonString()}"),
        };
    }

    public void Dispose() => _opt.Dispose();
}
