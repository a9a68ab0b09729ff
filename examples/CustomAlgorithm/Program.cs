// Plug a custom algorithm into the trainer in-process: best-of-k filtered imitation (examples/AlgorithmPlugin/BestOfK.cs,
// the same assembly the CLI loads with --algorithm-assembly). Registered under a name, it trains through the same loop
// as PPO: metrics.jsonl, TensorBoard, checkpoints, resume, gold evaluation, `rlhfgym compare` cells.
// Run: dotnet run --project examples/CustomAlgorithm -c Release (interrupt it and run again: it resumes).
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Examples.AlgorithmPlugin;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

PhraseWorldPlugin.Register(); // the built-in world: its env ids and its gold judge
new BestOfKPlugin().Register(); // what `--algorithm-assembly` does for the CLI

using var env = EnvRegistry.Make("PhraseWorld-Segment-v0", numEnvs: 32, progress: Console.Error.WriteLine);
string sft = Path.Combine(env.Bundle.Directory, EnvBundle.ReferenceDir);
var trainer = new Trainer(env, sft, JudgePolicyEvaluator.ForBundle(env.Bundle, env.Spec.MaxNewTokens, CPU), CPU, Console.Error.WriteLine);
string runDir = Path.Combine(Path.GetTempPath(), "rlhfgym-example-best-of-k");
var options = new TrainerOptions { Algorithm = "best-of-k", Iterations = 20, EvalEvery = 10 };
var summary = trainer.Run(runDir, options, resume: RunCheckpoint.Find(runDir) is not null);

foreach (var row in MetricsLog.Read(runDir))
    Console.WriteLine($"iteration {row["iteration"],2}: env return {row["task_reward"],8}  best of k {row["best_return"],8}  loss {row["policy_loss"]}");
foreach (var key in new[] { "gold_score_sft", "gold_score_policy", "win_rate_vs_sft" })
    Console.WriteLine($"{key,-20} {summary.Figures[key]}");
