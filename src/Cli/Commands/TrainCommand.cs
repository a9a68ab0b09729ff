using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Experiments;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Security;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym train` and `rlhfgym eval`: RL against an env, and held-out evaluation of a run's policy.</summary>
public static class TrainCommand
{
    public static Command Train()
    {
        var env = new EnvCliOptions();
        env.NumEnvs.DefaultValueFactory = _ => 64;
        var agent = new Option<string>("--agent") { Description = $"algorithm: {AlgorithmRegistry.Describe()} (the registered names)", DefaultValueFactory = _ => "ppo" };
        var defaults = new TrainerOptions();
        var iterations = new Option<int>("--iterations") { Description = "collect → update rounds", DefaultValueFactory = _ => defaults.Iterations };
        var outDir = new Option<string>("--out") { Description = "run directory (metrics.jsonl, tensorboard/, checkpoint/, policy/)", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue the run in --out from its last checkpoint" };
        var init = new Option<string?>("--init") { Description = "model the policy and critic start from (default: the bundle's reference = SFT model)" };
        var klCoef = new Option<double>("--kl-coef") { Description = "β: the KL shaping coefficient (PPO, REINFORCE, GRPO with --grpo-kl reward) or the k3 loss weight (GRPO)", DefaultValueFactory = _ => defaults.KlCoef };
        var klTarget = new Option<double?>("--kl-target") { Description = "adapt β toward this KL per episode (default: fixed β)" };
        var lr = new Option<double?>("--lr") { Description = "actor learning rate" };
        var baseline = new Option<string>("--baseline") { Description = "REINFORCE baseline: none, moving-average or rloo", DefaultValueFactory = _ => "rloo" };
        var k = new Option<int>("--k") { Description = "samples per prompt: RLOO's k, GRPO's group size G", DefaultValueFactory = _ => defaults.Reinforce.K };
        var grpoKl = new Option<string>("--grpo-kl") { Description = "GRPO: the KL to the reference as a k3 'loss' term or as 'reward' shaping", DefaultValueFactory = _ => "loss" };
        var assemblies = AlgorithmPluginOptions.Assemblies();
        var algorithmOptions = new Option<string[]>("--algorithm-option")
        {
            Description = "KEY=VALUE for an algorithm of your own (repeatable): TrainerOptions.AlgorithmOptions",
            AllowMultipleArgumentsPerToken = false,
        };
        var stopAfter = new Option<int?>("--stop-after") { Description = "stop after this iteration, leaving a checkpoint to --resume from (e.g. a time-sliced job)" };
        var temperature = new Option<double>("--temperature") { Description = "sampling temperature", DefaultValueFactory = _ => defaults.Temperature };
        var evalEvery = new Option<int>("--eval-every") { Description = "iterations between gold evaluations", DefaultValueFactory = _ => defaults.EvalEvery };
        var preset = new Option<string?>("--preset") { Description = "paper: the paper's PPO settings (method.md §4; tuned for 8B models, slow to move here)" };
        var remoteEnv = new Option<string?>("--remote-env") { Description = "with --env tcp://…: the env the server makes (default: the server's --env)" };
        var serverKey = new Option<string?>("--server-key") { Description = "with --env tcp://…: the CurveZMQ server's public key (Z85, or its PREFIX.key file)" };
        var clientKey = new Option<string?>("--client-key") { Description = "with --server-key: this client's PREFIX.key_secret (`rlhfgym keys new`)" };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("train", "train a policy with a registered algorithm (PPO, REINFORCE, GRPO, your own) against an env (registry id, bundle, or tcp:// server)")
        {
            agent, iterations, outDir, resume, init, klCoef, klTarget, lr, baseline, k, grpoKl, assemblies, algorithmOptions, stopAfter, temperature, evalEvery, preset,
            remoteEnv, serverKey, clientKey, seed, device,
        };
        env.AddTo(command);
        VerbRunner.Set(command, (parse, progress) =>
        {
            AlgorithmPluginOptions.Load(parse, assemblies, progress);
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            var o = defaults with
            {
                Algorithm = parse.GetValue(agent)!,
                Iterations = parse.GetValue(iterations),
                Seed = parse.GetValue(seed),
                KlCoef = parse.GetValue(klCoef),
                KlTarget = parse.GetValue(klTarget),
                Temperature = parse.GetValue(temperature),
                EvalEvery = CommonOptions.Positive(parse.GetValue(evalEvery), "--eval-every"),
            };
            if (parse.GetValue(preset) is { } p)
                // The preset's β unless --kl-coef was given: an explicit flag wins over a preset.
                o = p == "paper" ? o with { Ppo = PpoOptions.Paper, KlCoef = parse.GetResult(klCoef) is { Implicit: false } ? o.KlCoef : 0.01 }
                    : throw new ArgumentException($"--preset must be paper; got '{p}'");
            o = o with
            {
                Reinforce = o.Reinforce with
                {
                    Baseline = parse.GetValue(baseline) switch
                    {
                        "none" => ReinforceBaseline.None,
                        "moving-average" => ReinforceBaseline.MovingAverage,
                        "rloo" => ReinforceBaseline.Rloo,
                        var b => throw new ArgumentException($"--baseline must be none, moving-average or rloo; got '{b}'"),
                    },
                    K = parse.GetValue(k),
                },
                Grpo = o.Grpo with
                {
                    GroupSize = parse.GetValue(k),
                    Kl = parse.GetValue(grpoKl) switch
                    {
                        "loss" => GrpoKl.Loss,
                        "reward" => GrpoKl.Reward,
                        var v => throw new ArgumentException($"--grpo-kl must be loss or reward; got '{v}'"),
                    },
                },
                AlgorithmOptions = AlgorithmPluginOptions.KeyValues(parse.GetValue(algorithmOptions) ?? [], "--algorithm-option"),
            };
            if (parse.GetValue(lr) is { } rate)
                o = o with
                {
                    Ppo = o.Ppo with { Actor = o.Ppo.Actor with { LearningRate = rate } },
                    Reinforce = o.Reinforce with { Actor = o.Reinforce.Actor with { LearningRate = rate } },
                    Grpo = o.Grpo with { Actor = o.Grpo.Actor with { LearningRate = rate } },
                };
            int? stop = parse.GetValue(stopAfter) is { } n ? CommonOptions.Positive(n, "--stop-after") : null;
            if (parse.GetValue(resume)) Trainer.RequireResumableAlgorithm(parse.GetValue(outDir)!, o.Algorithm);
            o.Validate();
            string envName = parse.GetValue(env.Env)!;
            if (EnvCliOptions.IsRemote(envName))
            {
                // A served env: the policy's starting model must be local (--init); gold evaluation needs the world, which stays on the server.
                string initDir = parse.GetValue(init) ?? throw new ArgumentException("--init is required with a remote --env: the SFT model the policy starts from");
                CurveClientKeys? curve = (parse.GetValue(serverKey), parse.GetValue(clientKey)) switch
                {
                    (null, null) => null,
                    ({ } sk, { } ck) => CurveClientKeys.FromFiles(sk, ck),
                    _ => throw new ArgumentException("--server-key and --client-key go together (CurveZMQ needs both)"),
                };
                int numEnvs = CommonOptions.Positive(parse.GetValue(env.NumEnvs), "--num-envs");
                // Several addresses: one env sharded over them, which moves sub-envs off a server that dies.
                string[] addresses = envName.Split(',', StringSplitOptions.TrimEntries);
                using IVectorEnv remote = addresses.Length > 1
                    ? new ShardedVectorEnv(addresses, parse.GetValue(remoteEnv), numEnvs, env.ParseAutoreset(parse), env.ToWireOptions(parse), curve: curve, log: progress)
                    : new RemoteVectorEnv(envName, parse.GetValue(remoteEnv), numEnvs, env.ParseAutoreset(parse), env.ToWireOptions(parse), curve: curve);
                progress($"remote env {remote.Spec.Id} × {remote.Spec.NumEnvs} at {envName}" + (remote is RemoteVectorEnv one ? $" ({one.ServerVersion})" : ""));
                var remoteTrainer = new Trainer(remote, initDir, null, dev, progress);
                var figures = remoteTrainer.Run(parse.GetValue(outDir)!, o, parse.GetValue(resume), stop).Figures;
                figures["env_address"] = envName;
                return figures;
            }
            using var vectorEnv = env.Make(parse, dev, progress);
            var evaluator = JudgePolicyEvaluator.ForBundle(vectorEnv.Bundle, vectorEnv.Spec.MaxNewTokens, dev);
            var trainer = new Trainer(vectorEnv, parse.GetValue(init) ?? Path.Combine(vectorEnv.Bundle.Directory, EnvBundle.ReferenceDir), evaluator, dev, progress);
            return trainer.Run(parse.GetValue(outDir)!, o, parse.GetValue(resume), stop).Figures;
        });
        return command;
    }

    public static Command Eval()
    {
        var env = new EnvCliOptions();
        var run = new Option<string>("--run") { Description = "run directory (its final policy, else its last checkpoint)", Required = true };
        var samples = new Option<int>("--samples-per-prompt") { Description = "responses per test prompt", DefaultValueFactory = _ => 32 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("eval", "gold score, win rate and LC win rate of a run's policy vs the SFT model on held-out prompts") { run, samples, seed, device };
        env.AddTo(command);
        VerbRunner.Set(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            string runDir = parse.GetValue(run)!;
            RunEvaluation.PolicyDirectory(runDir); // a missing run fails before any env is built
            using var vectorEnv = env.Make(parse, dev, progress);
            return RunEvaluation.Evaluate(runDir, vectorEnv, CommonOptions.Positive(parse.GetValue(samples), "--samples-per-prompt"), parse.GetValue(seed), dev);
        });
        return command;
    }
}
