using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Models.Checkpoints;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Experiments.Demo;

/// <summary>
/// `rlhfgym demo`: the whole method on PhraseWorld, from nothing — world → SFT → three reward models and their
/// normalizers (built once and cached by the env registry) → PPO in bandit, token and segment modes → held-out
/// evaluation → runs/&lt;timestamp&gt;/report.md with tables, sample responses cut into their segments, and plots.
/// </summary>
/// <param name="progress">Receives one line per stage (the CLI prints them on stderr).</param>
public sealed class DemoPipeline(Device device, Action<string>? progress = null)
{
    public static readonly string[] Modes = ["bandit", "token", "segment"];

    public JsonObject Run(string outDir, int iterations, long seed, int numEnvs)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(outDir);
        void Stage(string text) => progress?.Invoke($"{clock.Elapsed:mm\\:ss} {text}");

        Stage("1/4 reward-model bundles (world seed 1 → SFT → RM per mode; reused when cached)");
        var bundles = new Dictionary<string, string>();
        foreach (var mode in Modes)
        {
            string id = PhraseWorldPlugin.EnvId(mode);
            bundles[mode] = EnvRegistry.Resolve(id, line => Stage($"    {line}"), device);
            var rm = EnvBundle.Load(bundles[mode]).Info;
            Stage($"    {id}: pairwise accuracy {rm["pairwise_accuracy"]}, gold Spearman {rm["gold_spearman"]}");
        }

        Stage($"2/4 PPO in each mode ({iterations} iterations × {numEnvs} episodes)");
        var summaries = new Dictionary<string, JsonObject>();
        var metrics = new Dictionary<string, List<JsonObject>>();
        foreach (var mode in Modes)
        {
            string runDir = Path.Combine(outDir, mode);
            using var env = EnvRegistry.Make(bundles[mode], numEnvs, device: device);
            var trainer = new Trainer(env, Path.Combine(bundles[mode], EnvBundle.ReferenceDir), JudgePolicyEvaluator.ForBundle(env.Bundle, env.Spec.MaxNewTokens, device), device,
                line => { if (line.Contains($"/{iterations}]") && (line.Contains($" {iterations}/") || line.Contains("0/"))) Stage($"    {line}"); });
            var options = new TrainerOptions { Iterations = iterations, Seed = seed, EvalEvery = 10, CheckpointEvery = iterations };
            bool resume = RunCheckpoint.Find(runDir) is not null && !File.Exists(Path.Combine(runDir, Trainer.SummaryFile));
            summaries[mode] = File.Exists(Path.Combine(runDir, Trainer.SummaryFile))
                ? JsonFile.ReadObject(Path.Combine(runDir, Trainer.SummaryFile))
                : trainer.Run(runDir, options, resume).Figures;
            metrics[mode] = MetricsLog.Read(runDir);
            Stage($"    {mode}: gold {summaries[mode]["gold_score_policy"]} (SFT {summaries[mode]["gold_score_sft"]}), LC win rate {RlhfGym.Env.Judging.LengthControlledWinRate.Text(summaries[mode]["lc_win_rate"])}");
        }

        Stage("3/4 plots and sample responses");
        double sftGold = (double)summaries["segment"]["gold_score_sft"]!;
        DemoPlots.MetricOverIterations(Path.Combine(outDir, "gold_score.png"), "gold_score", "Held-out gold score during PPO", "mean gold score",
            metrics, sftGold, "SFT");
        DemoPlots.MetricOverIterations(Path.Combine(outDir, "kl.png"), "kl", "KL(π ‖ π_ref) per episode during PPO", "KL (nats)", metrics);
        using var segmentEnv = EnvRegistry.Make(bundles["segment"], 1, device: device);
        var world = PhraseWorldPlugin.WorldOf(segmentEnv.Bundle);
        var locationPoints = LocationPoints(segmentEnv, world, seed);
        DemoPlots.RewardVsLocation(Path.Combine(outDir, "reward_vs_location.png"), locationPoints, segmentEnv.Bundle.Normalizers[NormalizerKind.Location]);
        string samples = SampleResponses(segmentEnv, world, Path.Combine(outDir, "segment", Trainer.FinalPolicyDir), seed);

        Stage("4/4 report");
        var result = new JsonObject { ["sft_gold_score"] = sftGold, ["best_gold_score"] = Math.Round(world.Split("test").Average(new GoldJudge(world).BestScore), 4) };
        foreach (var mode in Modes)
            result[mode] = new JsonObject
            {
                ["gold_score"] = summaries[mode]["gold_score_policy"]?.DeepClone(),
                ["win_rate_vs_sft"] = summaries[mode]["win_rate_vs_sft"]?.DeepClone(),
                ["lc_win_rate"] = summaries[mode]["lc_win_rate"]?.DeepClone(),
                ["lc_glm_failed"] = summaries[mode]["lc_glm_failed"]?.DeepClone(),
                ["kl"] = summaries[mode]["kl"]?.DeepClone(),
                ["length"] = summaries[mode]["eval_length"]?.DeepClone(),
            };
        string report = Path.Combine(outDir, "report.md");
        Models.Checkpoints.AtomicFile.WriteAllText(report, DemoReport.Markdown(result, bundles, samples, iterations, numEnvs, seed));
        result["report"] = Path.GetFullPath(report);
        result["wall_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);
        Stage($"report: {Path.GetFullPath(report)}");
        return result;
    }

    // Raw segment rewards of SFT samples on train prompts, located at p = k/K.
    private static List<(double P, double Reward)> LocationPoints(TextVectorEnv env, World world, long seed)
    {
        using var sft = env.Bundle.LoadReference(env.Device);
        var prompts = world.Split("train").Take(40).SelectMany(p => Enumerable.Repeat(p, 5)).ToList();
        var responses = PhraseWorldSft.Sample(sft, world, prompts, seed + 99, maxNewTokens: env.Spec.MaxNewTokens);
        var scored = env.Score(prompts.Select(p => p.Tokens).ToList(), responses);
        return scored.SelectMany(e => e.RawSegmentRewards.Select((r, k) => ((k + 1) / (double)e.RawSegmentRewards.Length, r))).ToList();
    }

    // A few test responses from the SFT model and the segment-mode policy, cut into segments with their rewards.
    private static string SampleResponses(TextVectorEnv env, World world, string policyDir, long seed)
    {
        var sb = new StringBuilder();
        var judge = new GoldJudge(world);
        var prompts = world.Split("test").GroupBy(p => p.Topic).Select(g => g.First()).Take(3).ToList(); // three topics
        using var sft = env.Bundle.LoadReference(env.Device);
        var (policy, _) = ModelCheckpoint.Load(policyDir, env.Device);
        using (policy)
        {
            policy.eval();
            foreach (var (name, model) in new[] { ("SFT", sft), ("PPO, segment reward", policy) })
            {
                sb.AppendLine($"### {name}\n");
                var responses = PhraseWorldSft.Sample(model, world, prompts, seed + 3, maxNewTokens: env.Spec.MaxNewTokens);
                var scored = env.Score(prompts.Select(p => p.Tokens).ToList(), responses);
                for (int i = 0; i < prompts.Count; i++)
                {
                    var e = scored[i];
                    sb.AppendLine($"**{prompts[i].Text.Replace("<", "&lt;").Replace(">", "&gt;")}** — gold {judge.Judge(prompts[i], responses[i]).Score:F2}\n");
                    for (int k = 0; k < e.Segments.Count; k++)
                    {
                        var seg = e.Segments[k];
                        string text = world.Tokenizer.Decode(e.Response.AsSpan(seg.Start, seg.Length));
                        sb.AppendLine($"- `{text}` — r {e.RawSegmentRewards[k]:F2}, r̃ {e.NormalizedSegmentRewards[k]:F2}");
                    }
                    sb.AppendLine();
                }
            }
        }
        return sb.ToString();
    }
}
