using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Normalization;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym normalizer fit`: fit a reward normalizer from segment rewards computed anywhere.</summary>
public static class NormalizerCommand
{
    public static Command Create()
    {
        var normalizer = new Command("normalizer", "reward normalizers (method.md §3)");
        var segments = new Option<string>("--segments") { Description = "JSON lines {\"rewards\":[r_1,…,r_K]}, one response each", Required = true };
        var outFile = new Option<string>("--out") { Description = "normalizer JSON to write", Required = true };
        var kind = new Option<string>("--kind") { Description = "location, global, last or none", DefaultValueFactory = _ => "location" };
        var fit = new Command("fit", "fit a normalizer; nothing is written unless the fit succeeds") { segments, outFile, kind };
        VerbRunner.Set(fit, (parse, progress) =>
        {
            var k = RewardNormalizer.ParseKind(parse.GetValue(kind)!);
            var data = SegmentRewardsFile.Read(parse.GetValue(segments)!);
            var report = NormalizerFitter.Fit(k, data);
            report.Normalizer.Save(parse.GetValue(outFile)!);
            progress($"normalizer fit: {report.Responses} responses, {report.Segments} segments → {parse.GetValue(outFile)}");
            var json = report.Normalizer.ToJson();
            json["responses"] = report.Responses;
            json["segments"] = report.Segments;
            json["buckets"] = report.Buckets;
            json["global_mean"] = report.GlobalMean;
            json["global_std"] = report.GlobalStd;
            json["clamped_fraction"] = report.ClampedFraction;
            json["clamped_below_p"] = report.ClampedBelowP;
            return json;
        });
        normalizer.Subcommands.Add(fit);
        return normalizer;
    }
}
