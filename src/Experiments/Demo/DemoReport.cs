using System.Text;
using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;

namespace RlhfGym.Experiments.Demo;

/// <summary>Writes the demo's report.md.</summary>
public static class DemoReport
{
    public static string Markdown(JsonObject result, IReadOnlyDictionary<string, string> bundles, string samples, int iterations, int numEnvs, long seed)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# RlhfGym demo: bandit vs token vs segment rewards on PhraseWorld\n");
        sb.AppendLine($"PPO from the same SFT model against three reward models trained on the same preference pairs, {iterations} iterations × {numEnvs} episodes each, seed {seed}. ");
        sb.AppendLine("Evaluation: 32 samples per held-out test prompt, judged by PhraseWorld's gold judge (docs/phraseworld.md), against the SFT model's samples.\n");
        sb.AppendLine("| reward | gold score | win rate vs SFT | LC win rate | KL / episode | mean length |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var mode in DemoPipeline.Modes)
        {
            var m = result[mode]!;
            sb.AppendLine($"| {mode} | {m["gold_score"]} | {m["win_rate_vs_sft"]} | {RlhfGym.Env.Judging.LengthControlledWinRate.Text(m["lc_win_rate"])} | {m["kl"]} | {m["length"]} |");
        }
        sb.AppendLine($"| SFT (baseline) | {result["sft_gold_score"]} | 0.5 | 0.5 | 0 | |");
        sb.AppendLine($"\nBest achievable mean gold on these prompts: {result["best_gold_score"]}.\n");
        sb.AppendLine("## Reward models\n");
        sb.AppendLine("| RM | pairwise accuracy | gold Spearman | segment–gold correlation | segments / response |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var mode in DemoPipeline.Modes)
        {
            var rm = EnvBundle.Load(bundles[mode]).Info;
            sb.AppendLine($"| {mode} | {rm["pairwise_accuracy"]} | {rm["gold_spearman"]} | {rm["segment_gold_correlation"]?.ToJsonString() ?? "—"} | {rm["segments_per_response"]} |");
        }
        sb.AppendLine("\n## Training curves\n");
        sb.AppendLine("![gold score](gold_score.png)\n");
        sb.AppendLine("![KL](kl.png)\n");
        sb.AppendLine("## The location normalizer\n");
        sb.AppendLine("Raw segment rewards of SFT responses against their location p = k/K, with the fitted μ(p) ± σ(p) of the segment bundle (method.md §3).\n");
        sb.AppendLine("![reward vs location](reward_vs_location.png)\n");
        sb.AppendLine("## Sample responses, cut into entropy segments\n");
        sb.AppendLine("Each line is one segment (cut where the SFT reference's next-token entropy exceeds c_ent = 2.0) with its raw reward r and its location-normalized reward r̃.\n");
        sb.Append(samples);
        sb.AppendLine("\nRuns, metrics (metrics.jsonl, tensorboard/) and policies are in the mode subdirectories of this folder.");
        return sb.ToString();
    }
}
