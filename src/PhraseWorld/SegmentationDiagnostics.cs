using RlhfGym.Env.Core;
using RlhfGym.Env.Segmentation;
using RlhfGym.Models.Transformer;

namespace RlhfGym.PhraseWorld;

public sealed record SegmentationPoint(double CEnt, double Precision, double Recall, double F1, double SegmentsPerResponse);

/// <summary>
/// How well the entropy rule recovers PhraseWorld's gold phrase boundaries. A boundary is the index of a token that
/// ends a segment; the final content token ends a segment by construction in both, so it is left out of the counts
/// (it would inflate every score). Micro-averaged precision, recall and F1 over all responses.
/// </summary>
public static class SegmentationDiagnostics
{
    public static readonly double[] DefaultThresholds =
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0];

    public static List<SegmentationPoint> Sweep(CausalTransformer reference, World world,
        IReadOnlyList<(WorldPrompt Prompt, int[] Response)> data, IEnumerable<double> thresholds)
    {
        var judge = new GoldJudge(world);
        var entropies = new ScoringPipeline(reference, null, world.Tokenizer.PadId).Entropies(data.Select(d => (d.Prompt.Tokens, d.Response)).ToList());
        var gold = new HashSet<int>[data.Count];
        var content = new int[data.Count];
        for (int i = 0; i < data.Count; i++)
        {
            var verdict = judge.Judge(data[i].Prompt, data[i].Response);
            content[i] = verdict.Terminated ? verdict.Length : data[i].Response.Length;
            gold[i] = verdict.BoundaryEnds.Where(e => e < content[i] - 1).ToHashSet();
        }
        var points = new List<SegmentationPoint>();
        foreach (double c in thresholds)
        {
            long tp = 0, fp = 0, fn = 0, segments = 0;
            for (int i = 0; i < data.Count; i++)
            {
                var cuts = EntropySegmenter.Segment(entropies[i], content[i], c);
                segments += cuts.Count;
                var predicted = cuts.Select(s => s.End).Where(e => e < content[i] - 1).ToHashSet();
                long hit = predicted.Count(gold[i].Contains);
                tp += hit;
                fp += predicted.Count - hit;
                fn += gold[i].Count - hit;
            }
            double precision = tp + fp > 0 ? tp / (double)(tp + fp) : 1, recall = tp + fn > 0 ? tp / (double)(tp + fn) : 1;
            double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
            points.Add(new SegmentationPoint(c, precision, recall, f1, segments / (double)data.Count));
        }
        return points;
    }
}
