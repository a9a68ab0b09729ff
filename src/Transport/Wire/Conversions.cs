using System.Globalization;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Env.Segmentation;

namespace RlhfGym.Transport.Wire;

/// <summary>Between the env's types and the wire's.</summary>
public static class Conversions
{
    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Every env option as text, the form the wire uses for "make" options and the spec.</summary>
    public static Dictionary<string, string> OptionsToText(EnvOptions o) => new()
    {
        ["mode"] = o.Reading.Name,
        ["c_ent"] = o.Reading.Mode == RewardMode.Segment ? F(o.Reading.CEnt) : "",
        ["normalizer"] = RewardNormalizer.KindName(o.Normalizer),
        ["interpolation"] = EnvOptions.Name(o.Interpolation),
        ["delivery"] = EnvOptions.Name(o.Delivery),
        ["max_new_tokens"] = o.MaxNewTokens.ToString(CultureInfo.InvariantCulture),
        ["missing_eos"] = EnvOptions.Name(o.MissingEos),
        ["missing_eos_penalty"] = F(o.MissingEosPenalty),
        ["dense_as_bandit"] = o.DenseAsBandit ? "true" : "false",
        ["prompt_split"] = o.PromptSplit,
    };

    /// <summary>Apply text options over defaults; an unknown key or a bad value is an ArgumentException naming it.</summary>
    public static EnvOptions ApplyText(IReadOnlyDictionary<string, string>? text, EnvOptions defaults)
    {
        if (text is null) return defaults;
        var o = defaults;
        double Num(string key, string v) => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d : throw new ArgumentException($"option '{key}' must be a number, got '{v}'");
        string? mode = text.GetValueOrDefault("mode");
        string? cEnt = text.GetValueOrDefault("c_ent");
        if (!string.IsNullOrEmpty(mode) || !string.IsNullOrEmpty(cEnt))
            o = o with { Reading = RewardReading.Parse(string.IsNullOrEmpty(mode) ? o.Reading.Name : mode!, string.IsNullOrEmpty(cEnt) ? RewardReading.PaperCEnt : Num("c_ent", cEnt!)) };
        foreach (var (key, value) in text)
        {
            switch (key)
            {
                case "mode" or "c_ent": break;
                case "normalizer": o = o with { Normalizer = RewardNormalizer.ParseKind(value) }; break;
                case "interpolation": o = o with { Interpolation = EnvOptions.Parse<Interpolation>(value, "interpolation") }; break;
                case "delivery": o = o with { Delivery = EnvOptions.Parse<RewardDelivery>(value, "delivery") }; break;
                case "max_new_tokens": o = o with { MaxNewTokens = (int)Num(key, value) }; break;
                case "missing_eos": o = o with { MissingEos = EnvOptions.Parse<MissingEosRule>(value, "missing_eos") }; break;
                case "missing_eos_penalty": o = o with { MissingEosPenalty = Num(key, value) }; break;
                case "dense_as_bandit": o = o with { DenseAsBandit = value == "true" }; break;
                case "prompt_split": o = o with { PromptSplit = value }; break;
                default: throw new ArgumentException($"unknown option '{key}'");
            }
        }
        o.Validate();
        return o;
    }

    public static SpecMessage ToMessage(EnvSpec s) => new()
    {
        Id = s.Id,
        NumEnvs = s.NumEnvs,
        VocabSize = s.VocabSize,
        EosIds = s.EosIds.ToArray(),
        PadId = s.PadId,
        MaxNewTokens = s.MaxNewTokens,
        Autoreset = s.Autoreset == AutoresetMode.NextStep ? "next-step" : "disabled",
        Options = OptionsToText(s.Options),
    };

    public static EnvSpec FromMessage(SpecMessage m) => new(m.Id, m.NumEnvs, m.VocabSize, m.EosIds, m.PadId, m.MaxNewTokens,
        ParseAutoreset(m.Autoreset), ApplyText(m.Options, new EnvOptions()));

    public static AutoresetMode ParseAutoreset(string? value) => value switch
    {
        null or "" or "next-step" => AutoresetMode.NextStep,
        "disabled" => AutoresetMode.Disabled,
        _ => throw new ArgumentException($"autoreset must be next-step or disabled, got '{value}'"),
    };

    public static EpisodeMessage ToMessage(EpisodeRewards e) => new()
    {
        Response = e.Response,
        PerToken = e.PerToken,
        Online = e.Online,
        Segments = e.Segments.Select(s => new[] { s.Start, s.End }).ToArray(),
        Raw = e.RawSegmentRewards,
        Normalized = e.NormalizedSegmentRewards,
        Entropies = e.Entropies,
        RefLogProbs = e.RefLogProbs,
        Terminated = e.Terminated,
        Truncated = e.Truncated,
        Gold = e.Gold,
    };

    public static EpisodeRewards FromMessage(EpisodeMessage m) =>
        new(m.Response, m.PerToken, m.Online, m.Segments.Select(s => new Segment(s[0], s[1])).ToList(), m.Raw, m.Normalized,
            m.Entropies, m.RefLogProbs, m.Terminated, m.Truncated)
        { Gold = m.Gold };

    /// <summary>A step's results as a reply (copies the env's reused arrays).</summary>
    public static void Fill(Reply r, StepResult s)
    {
        r.Rewards = (float[])s.Rewards.Clone();
        r.Terminated = (bool[])s.Terminated.Clone();
        r.Truncated = (bool[])s.Truncated.Clone();
        r.RefLogProb = (float[])s.RefLogProb.Clone();
        r.RefEntropy = (float[])s.RefEntropy.Clone();
        r.SegmentEnded = (bool[])s.SegmentEnded.Clone();
        r.RawRead = (float[])s.RawRead.Clone();
        r.ResetPrompts = (int[]?[])s.ResetPrompts.Clone();
        r.ResetPromptIds = (string?[])s.ResetPromptIds.Clone();
        r.Episodes = s.Episodes.Select(e => e is null ? null : ToMessage(e)).ToArray();
    }
}
