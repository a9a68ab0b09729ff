using RlhfGym.Env.Bundles;
using RlhfGym.Env.Common;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models.Tokenization;
using RlhfGym.Models.Transformer;

namespace RlhfGym.Env.Builders;

/// <summary>What a fit from preference pairs used and skipped.</summary>
public sealed record PreferenceFitOutcome(Dictionary<NormalizerKind, NormalizerFitReport> Fits, int Pairs, int Skipped);

/// <summary>
/// Fits every normalizer kind on a reward model's own preference data, as the paper does (method.md §3): the chosen
/// and the rejected response of each pair are segmented by the reference LM's entropy under the bundle's reading,
/// scored by the RM at each segment's end, and the raw segment rewards are fitted.
/// </summary>
/// <remarks>
/// The file is JSONL, one pair a line: {"prompt": …, "chosen": …, "rejected": …} (TRL's explicit-prompt format).
/// Each response is made into what the env would have produced: the prompt in the chat template, the response's
/// tokens without the tokenizer's start-of-text prefix, cut after its first EOS (any of the bundle's), else ended with
/// the end-of-turn token. A pair whose response exceeds the new-token budget, or whose prompt + response exceeds the
/// context, is one the env never scores: it is skipped and counted.
/// </remarks>
public static class PreferenceNormalizerFit
{
    /// <summary>Floats one batch's largest activation may hold (B × T × max(vocabulary, d_ff)): 128 MB.</summary>
    private const long ActivationBudget = 1L << 25;

    public static PreferenceFitOutcome Fit(string path, ChatTemplate template, ITokenizer tokenizer, IReadOnlyList<int> eosIds, int maxNewTokens,
        int context, CausalTransformer reference, RewardModel rm, RewardReading reading, Action<string>? progress = null)
    {
        IReadOnlySet<int> isEos = new HashSet<int>(eosIds);
        // SentencePiece tokenizers put <s> before every encoded text; a response continues the prompt, so drop it.
        var startOfText = tokenizer.Encode("");
        int skipped = 0;
        var rows = new List<(int[] Prompt, int[] Response)>();
        Jsonl.Read(path, version: null, line =>
        {
            var prompt = tokenizer.Encode(template.Format(line.String("prompt")));
            if (prompt.Length == 0) throw line.Error("\"prompt\" encodes to no tokens");
            var chosen = Response(line, "chosen", tokenizer, startOfText, isEos, eosIds[^1]);
            var rejected = Response(line, "rejected", tokenizer, startOfText, isEos, eosIds[^1]);
            int longest = Math.Max(chosen.Length, rejected.Length);
            if (longest > maxNewTokens || prompt.Length + longest > context) skipped++;
            else
            {
                rows.Add((prompt, chosen));
                rows.Add((prompt, rejected));
            }
            return 0;
        });
        if (rows.Count == 0)
            throw new InvalidDataException($"{path}: no preference pair fits max_new_tokens {maxNewTokens} and the models' context of {context} tokens ({skipped} skipped)");
        progress?.Invoke($"normalizers: {rows.Count / 2} preference pairs ({skipped} skipped as too long), segmenting and scoring {rows.Count} responses");

        int longestRow = rows.Max(r => r.Prompt.Length + r.Response.Length);
        int widest = Math.Max(reference.Config.VocabSize, Math.Max(rm.Transformer.Config.DFf, reference.Config.DFf));
        int batch = (int)Math.Clamp(ActivationBudget / ((long)longestRow * widest), 1, 128);
        // The same scoring pipeline the env's score endpoint uses: the normalizers fit what the env will pay.
        var raw = new ScoringPipeline(reference, rm, tokenizer.PadId).RawSegmentRewards(rows, reading, eosIds, maxNewTokens, batch);
        try
        {
            return new PreferenceFitOutcome(NormalizerFitter.FitAll(reading.Mode, raw), rows.Count / 2, skipped);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"{path}: cannot fit normalizers on these pairs under {reading.Name} reading (c_ent {reading.CEnt}): {e.Message}. "
                + "A lower --c-ent cuts more segments; or fit one elsewhere and pass it with --normalizer.", e);
        }
    }

    private static int[] Response(JsonLine line, string field, ITokenizer tokenizer, int[] startOfText, IReadOnlySet<int> isEos, int endId)
    {
        try { return ResponseTokens(tokenizer, line.String(field), startOfText, isEos, endId); }
        catch (ArgumentException e) { throw line.Error($"\"{field}\" {e.Message}"); }
    }

    /// <summary>A response text as the env would have produced it: its tokens without the tokenizer's start-of-text
    /// prefix (<paramref name="startOfText"/>, what encoding "" gives), cut after the first EOS, else ended with
    /// <paramref name="endId"/>.</summary>
    public static int[] ResponseTokens(ITokenizer tokenizer, string text, int[] startOfText, IReadOnlySet<int> isEos, int endId)
    {
        var tokens = tokenizer.Encode(text);
        if (startOfText.Length > 0 && tokens.AsSpan().StartsWith(startOfText)) tokens = tokens[startOfText.Length..];
        if (tokens.Length == 0) throw new ArgumentException("encodes to no tokens");
        int firstEos = Array.FindIndex(tokens, isEos.Contains);
        return firstEos >= 0 ? tokens[..(firstEos + 1)] : [.. tokens, endId];
    }
}
