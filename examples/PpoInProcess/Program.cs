// Train PPO in-process on the built-in segment-reward env and compare the policy with the SFT model under the gold
// judge. Run: dotnet run --project examples/PpoInProcess -c Release
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using static TorchSharp.torch;

// 1. The env: 64 sub-envs of PhraseWorld with segment-level rewards (built and cached on first use).
//    Options are flags of one env: try Reading = RewardReading.Token, or Normalizer = NormalizerKind.None.
using var env = EnvRegistry.Make("PhraseWorld-Segment-v0", numEnvs: 64, configure: o => o with { Interpolation = Interpolation.Even },
    progress: Console.Error.WriteLine);

// 2. The trainer: the policy and critic start from the bundle's reference (the SFT model); the gold judge evaluates.
string sft = Path.Combine(env.Bundle.Directory, EnvBundle.ReferenceDir);
var trainer = new Trainer(env, sft, new WorldPolicyEvaluator(env.Bundle.World!, sft, CPU, env.Spec.MaxNewTokens), CPU, Console.Error.WriteLine);

// 3. PPO with the defaults measured for PhraseWorld (docs/agents.md); swap Algorithm = "reinforce" for RLOO.
var options = new TrainerOptions { Algorithm = "ppo", Iterations = 40, Seed = 7, KlCoef = 0.3 };
var summary = trainer.Run(Path.Combine(Path.GetTempPath(), "rlhfgym-example-ppo"), options, resume: false);

// 4. What came out: gold score of the policy vs SFT on held-out prompts, win rates, KL.
foreach (var key in new[] { "gold_score_sft", "gold_score_policy", "win_rate_vs_sft", "lc_win_rate", "kl" })
    Console.WriteLine($"{key,-20} {summary.Figures[key]}");
