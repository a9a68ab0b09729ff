using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Env.Common;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Algorithms;

public sealed record PpoOptions
{
    public int Epochs { get; init; } = 2;
    public int MiniBatchSize { get; init; } = 32;
    public double Clip { get; init; } = 0.2;
    /// <summary>Value clip: 0.25 for dense rewards, 0.2 for bandit (the paper's code).</summary>
    public double ValueClip { get; init; } = 0.25;
    public double Gamma { get; init; } = 1.0;
    public double Lambda { get; init; } = 0.95;
    public OptimizerSettings Actor { get; init; } = new() { LearningRate = 2e-4, WarmupFraction = 0.05, Betas = (0.9, 0.95) };
    public OptimizerSettings Critic { get; init; } = new() { LearningRate = 1e-3, WarmupFraction = 0.05, Betas = (0.9, 0.95) };

    /// <summary>The paper's settings at 8B scale (method.md §4): 1 epoch, actor 5e-7, critic 9e-6, batch 128.</summary>
    public static PpoOptions Paper => new()
    {
        Epochs = 1,
        MiniBatchSize = 128,
        Actor = new OptimizerSettings { LearningRate = 5e-7, Betas = (0.9, 0.95) },
        Critic = new OptimizerSettings { LearningRate = 9e-6, Betas = (0.9, 0.95) },
    };
}

/// <summary>
/// PPO as the paper runs it (method.md §4), read top to bottom:
/// 1. score the rollout with the current policy (π_old) and critic (V_old, read at the token before each action);
/// 2. shape rewards per token: R_t = r_t − β(log π_old − log π_ref), with the env's log π_ref;
/// 3. GAE (γ, λ; V after the last action = 0), advantages whitened over the whole rollout;
/// 4. epochs × minibatches of the clipped policy loss and the clipped value loss, each with its own AdamW,
///    warm-up + cosine schedule and gradient clipping.
/// </summary>
public sealed class Ppo : IAlgorithm
{
    public string Name => "ppo";
    public int GroupSize => 1;

    private readonly PolicyModel _policy;
    private readonly RewardModel _critic; // a transformer with a scalar head: the same shape as a reward model
    private readonly PpoOptions _o;
    private readonly int _padId;
    private readonly long _seed;
    private readonly AdamW _actorOpt, _criticOpt;
    private int _step;

    public Ppo(PolicyModel policy, RewardModel critic, PpoOptions options, int padId, long seed)
    {
        _policy = policy;
        _critic = critic;
        _o = options;
        _o.Actor.Validate();
        _o.Critic.Validate();
        _padId = padId;
        _seed = seed;
        _actorOpt = _o.Actor.CreateOptimizer(policy.Model.parameters());
        _criticOpt = _o.Critic.CreateOptimizer(critic.Parameters());
    }

    public UpdateStats Update(Rollout rollout, double klCoef, int iteration, int totalIterations)
    {
        var episodes = rollout.Episodes;
        var device = _policy.Model.Device;
        float[][] oldLogProbs, oldValues;
        double entropy;
        using (no_grad())
        using (var scope = NewDisposeScope())
        using (var all = new SequenceTensors(episodes, _padId, device))
        {
            _policy.Model.eval();
            _critic.Train(false);
            oldLogProbs = all.Take(_policy.NextTokenLogProbs(all.Batch));
            oldValues = all.Take(CriticValues(all));
            entropy = ((_policy.NextTokenEntropy(all.Batch) * all.Mask).sum() / all.Mask.sum()).item<float>();
        }

        // Reward shaping and GAE, per episode.
        var shaping = KlShaping.Shape(episodes, oldLogProbs, klCoef);
        var advantages = new float[episodes.Count][];
        var returns = new float[episodes.Count][];
        double shapedSum = 0;
        for (int b = 0; b < episodes.Count; b++)
        {
            var shaped = new float[episodes[b].Response.Length];
            for (int t = 0; t < shaped.Length; t++)
            {
                shaped[t] = (float)shaping.Rewards[b][t];
                shapedSum += shaped[t];
            }
            (advantages[b], returns[b]) = Advantages.Gae(shaped, oldValues[b], _o.Gamma, _o.Lambda);
        }
        double explained = ExplainedVariance(returns, oldValues);
        Advantages.Whiten(advantages);

        // Epochs × minibatches.
        int miniBatches = (episodes.Count + _o.MiniBatchSize - 1) / _o.MiniBatchSize;
        int totalSteps = totalIterations * _o.Epochs * miniBatches;
        var rng = new SeededRandom(_seed * 1_000_003 + iteration);
        var order = Enumerable.Range(0, episodes.Count).ToArray();
        double policyLoss = 0, valueLoss = 0, approxKl = 0, clipFraction = 0;
        int updates = 0;
        _policy.Model.train();
        _critic.Train(true);
        for (int epoch = 0; epoch < _o.Epochs; epoch++)
        {
            rng.Shuffle(order);
            for (int start = 0; start < order.Length; start += _o.MiniBatchSize, _step++, updates++)
            {
                var idx = order.Skip(start).Take(_o.MiniBatchSize).ToArray();
                using var scope = NewDisposeScope();
                using var mb = new SequenceTensors(idx.Select(i => episodes[i]).ToList(), _padId, device);
                var adv = mb.Place(k => advantages[idx[k]]);
                var ret = mb.Place(k => returns[idx[k]]);
                var oldLp = mb.Place(k => oldLogProbs[idx[k]]);
                var oldV = mb.Place(k => oldValues[idx[k]]);

                _o.Actor.ScheduleLearningRate(_actorOpt, _step, totalSteps);
                _actorOpt.zero_grad();
                var (pLoss, clipFrac, kl) = PpoLosses.Policy(_policy.NextTokenLogProbs(mb.Batch), oldLp, adv, mb.Mask, _o.Clip);
                pLoss.backward();
                nn.utils.clip_grad_norm_(_policy.Model.parameters(), _o.Actor.GradClip);
                _actorOpt.step();

                _o.Critic.ScheduleLearningRate(_criticOpt, _step, totalSteps);
                _criticOpt.zero_grad();
                var vLoss = PpoLosses.Value(CriticValues(mb), oldV, ret, mb.Mask, _o.ValueClip);
                vLoss.backward();
                nn.utils.clip_grad_norm_(_critic.Parameters(), _o.Critic.GradClip);
                _criticOpt.step();

                policyLoss += pLoss.item<float>();
                valueLoss += vLoss.item<float>();
                clipFraction += clipFrac;
                approxKl += kl;
            }
        }
        _policy.Model.eval();
        _critic.Train(false);
        return new UpdateStats(new Dictionary<string, double>
        {
            [UpdateStats.PolicyLoss] = policyLoss / updates,
            [UpdateStats.ValueLoss] = valueLoss / updates,
            [UpdateStats.PolicyEntropy] = entropy,
            [UpdateStats.ApproxKl] = approxKl / updates,
            [UpdateStats.ClipFraction] = clipFraction / updates,
            [UpdateStats.ExplainedVariance] = explained,
            [UpdateStats.Kl] = shaping.Kl,
            [UpdateStats.ShapedReward] = shapedSum / episodes.Count,
        });
    }

    // V(s_t) for every action position: the critic's head at the token before each action, aligned like the policy scores.
    private Tensor CriticValues(SequenceTensors t)
    {
        var input = t.Batch.Tokens.narrow(1, 0, t.Batch.Width - 1);
        var lengths = t.Batch.Lengths.Select(l => Math.Min(l, t.Batch.Width - 1)).ToArray();
        return _critic.Head.forward(_critic.Transformer.Forward(input, lengths));
    }

    private static double ExplainedVariance(float[][] returns, float[][] values)
    {
        var r = returns.SelectMany(x => x).Select(v => (double)v).ToArray();
        var d = returns.Zip(values).SelectMany(p => p.First.Zip(p.Second, (a, b) => (double)a - b)).ToArray();
        double Var(double[] x) { double m = x.Average(); return x.Sum(v => (v - m) * (v - m)) / x.Length; }
        double vr = Var(r);
        return vr > 0 ? 1 - Var(d) / vr : double.NaN;
    }

    public void SaveState(string directory)
    {
        _critic.Save(Path.Combine(directory, "critic"));
        _actorOpt.save_state_dict(Path.Combine(directory, "actor_optimizer.bin"));
        _criticOpt.save_state_dict(Path.Combine(directory, "critic_optimizer.bin"));
        File.WriteAllText(Path.Combine(directory, "ppo.json"), $"{{\"step\":{_step}}}");
    }

    public void LoadState(string directory)
    {
        var critic = RewardModel.Load(Path.Combine(directory, "critic"), _critic.Transformer.Device);
        using (critic)
        using (no_grad())
        {
            var source = critic.StateCopy();
            _critic.Restore(source);
            foreach (var t in source.Values) t.Dispose();
        }
        AlgorithmState.LoadOptimizer(_actorOpt, Path.Combine(directory, "actor_optimizer.bin"));
        AlgorithmState.LoadOptimizer(_criticOpt, Path.Combine(directory, "critic_optimizer.bin"));
        _step = AlgorithmState.Read(Path.Combine(directory, "ppo.json")).Step;
    }

    public void Dispose()
    {
        _actorOpt.Dispose();
        _criticOpt.Dispose();
        _critic.Dispose();
    }
}
