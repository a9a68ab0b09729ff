using RlhfGym.Env.Common;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models.Tokenization;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Env.Bundles;

/// <summary>What a fit from preference pairs used and skipped.</summary>
public sealed record PreferenceFitOutcome(Dictionary<NormalizerKind, NormalizerFitReport> Fits, int Pairs, int Skipped);

/// <summary>
/// Fits every normalizer kind on a reward model's own preference data, as the paper does (method.md §3): the chosen
/// and the rejected response of each pair are segmented by the reference LM's entropy under the bundle's reading,
/// scored by the RM at each segment's end, and the raw segment rewards are fitted.
/// </summary>
/// <remarks>
/// The file is JSONL, one pair a line: {"prompt": …, "chosen": …, "rejected": …} (TRL's explicit-prompt preference
/// format). Prompts are wrapped in the chat template like the env's; each response ends with the end-of-turn (else
/// EOS) token, as a finished episode does. Pairs too long for the models' context are skipped and counted.
/// </remarks>
public static class PreferenceNormalizerFit
{
    public static PreferenceFitOutcome Fit(string path, ChatTemplate template, ITokenizer tokenizer, int endId, int context,
        CausalTransformer reference, RewardModel rm, RewardReading reading, Action<string>? progress = null)
    {
        int skipped = 0;
        var rows = new List<(int[] Prompt, int[] Response)>();
        Jsonl.Read(path, version: null, line =>
        {
            var prompt = tokenizer.Encode(template.Format(line.String("prompt")));
            var chosen = Response(line, "chosen", tokenizer, endId);
            var rejected = Response(line, "rejected", tokenizer, endId);
            if (prompt.Length + Math.Max(chosen.Length, rejected.Length) > context) skipped++;
            else
            {
                rows.Add((prompt, chosen));
                rows.Add((prompt, rejected));
            }
            return 0;
        });
        if (rows.Count == 0)
            throw new InvalidDataException($"{path}: no preference pair fits the models' context of {context} tokens ({skipped} skipped)");
        progress?.Invoke($"normalizers: {rows.Count / 2} preference pairs ({skipped} skipped as too long), segmenting and scoring {rows.Count} responses");

        var entropies = reading.NeedsEntropy ? ReferenceEntropies.Compute(reference, rows, tokenizer.PadId) : null;
        var planned = rows.Select((r, i) => new PlannedResponse(r.Prompt, r.Response,
            ResponseSegments.Plan(reading, r.Response, endId, entropies is null ? default : entropies[i]))).ToList();
        var raw = RewardScoring.SegmentRewards(rm, planned, tokenizer.PadId).Where(r => r.Length > 0)
            .Select(r => (IReadOnlyList<double>)r).ToList();
        return new PreferenceFitOutcome(NormalizerFitter.FitAll(reading.Mode, raw), rows.Count / 2, skipped);
    }

    private static int[] Response(JsonLine line, string field, ITokenizer tokenizer, int endId)
    {
        var tokens = tokenizer.Encode(line.String(field));
        if (tokens.Length == 0) throw line.Error($"\"{field}\" encodes to no tokens");
        return [.. tokens, endId];
    }
}
