using System.Text.Json.Nodes;
using RlhfGym.Env.Builders;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Normalization;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.Env.Tests;

/// <summary>`bundle from-hf`: a bundle around Hugging Face-layout checkpoints and a byte-level BPE tokenizer.</summary>
public class HfBundleTests
{
    private static HfBundleRequest Request(TempDir dir) => new()
    {
        ReferenceDir = dir.File("ref"),
        RewardDir = dir.File("rm"),
        TokenizerDir = dir.File("tok"),
        PromptsFile = dir.File("prompts.jsonl"),
        OutDir = dir.File("bundle"),
        MaxNewTokens = 16,
    };

    [Fact]
    public void A_bundle_from_hugging_face_checkpoints_passes_the_env_checker()
    {
        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("tok"));
        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"tell me about the sea"}""", """{"id":"q2","prompt":"hi there","split":"test"}""", "", """{"text":"say it"}"""]);
        var bundle = HfBundleBuilder.Build(Request(dir));

        Assert.Equal(TinyHf.Vocab, bundle.VocabSize);
        int endOfText = bundle.Tokenizer.SpecialTokens["<|endoftext|>"], imEnd = bundle.Tokenizer.SpecialTokens["<|im_end|>"];
        Assert.Equal([endOfText, imEnd], bundle.EosIds);
        Assert.Equal(3, bundle.Prompts.Count);
        Assert.Equal("test", bundle.Prompts.Single(p => p.Id == "q2").Split);
        Assert.Equal(bundle.Tokenizer.SpecialTokens["<|im_start|>"], bundle.Prompts[0].Tokens[0]);
        Assert.Equal("<|im_start|>user\ntell me about the sea<|im_end|>\n<|im_start|>assistant\n", bundle.Prompts[0].Text);
        Assert.Equal("chatml", (string?)bundle.Info["chat_template"]);

        using var env = new TextVectorEnv(bundle, 2);
        var report = EnvChecker.Check(env, seed: 1, steps: 24);
        Assert.True(report.Passed, string.Join("\n", report.Failures.Select(f => $"{f.Name}: {f.Detail}")));

        // The chat model's end of turn ends an episode like EOS does.
        env.Reset(5);
        var step = env.Step([imEnd, 3]);
        Assert.True(step.Terminated[0]);
        Assert.False(step.Terminated[1]);
    }

    private static string Words(Random rng, int count) =>
        string.Join(" ", Enumerable.Range(0, count).Select(_ => new string(Enumerable.Range(0, rng.Next(1, 5)).Select(_ => (char)('a' + rng.Next(26))).ToArray())));

    private static string Pair(string prompt, string chosen, string? rejected) =>
        new JsonObject { ["prompt"] = prompt, ["chosen"] = chosen, ["rejected"] = rejected }.ToJsonString();

    private static List<(string Prompt, string Chosen, string Rejected)> WritePreferences(string path, int pairs, int seed)
    {
        var rng = new Random(seed);
        var data = Enumerable.Range(0, pairs).Select(_ => (Words(rng, 3), Words(rng, rng.Next(2, 6)), Words(rng, rng.Next(2, 6)))).ToList();
        File.WriteAllLines(path, data.Select(d => Pair(d.Item1, d.Item2, d.Item3)));
        return data;
    }

    [Fact]
    public void Preference_pairs_fit_the_normalizers_on_the_same_segment_rewards_the_env_computes()
    {
        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("tok"));
        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"tell me about the sea"}"""]);
        var pairs = WritePreferences(dir.File("prefs.jsonl"), 24, seed: 4);
        // One pair longer than the tiny models' context of 96 tokens: skipped and counted, not fatal.
        // Another within the context but over the 40-token budget: the env never produces it, so it is skipped too.
        File.AppendAllLines(dir.File("prefs.jsonl"), [Pair("hi", new string('a', 200), "no"), Pair("hi", string.Join(" ", Enumerable.Repeat("b", 30)), "no")]);
        var bundle = HfBundleBuilder.Build(Request(dir) with { PreferencesFile = dir.File("prefs.jsonl"), MaxNewTokens = 40 });

        Assert.Equal(NormalizerKind.Location, bundle.Defaults.Normalizer);
        var fit = bundle.Info["normalizer_fit"]!;
        Assert.Equal(24, (int)fit["pairs"]!);
        Assert.Equal(2, (int)fit["skipped_too_long"]!);
        Assert.NotEqual(RewardNormalizer.Identity.Mean, bundle.Normalizers[NormalizerKind.Location].Mean);

        // The global normalizer's μ and σ are those of the raw segment rewards that the env's own score endpoint
        // reads from the same 48 responses.
        using var env = new TextVectorEnv(bundle, 1, bundle.Defaults with { Normalizer = NormalizerKind.None });
        var template = ChatTemplate.Parse("chatml");
        int imEnd = bundle.Tokenizer.SpecialTokens["<|im_end|>"];
        var prompts = pairs.SelectMany(p => new[] { p.Prompt, p.Prompt }).Select(p => bundle.Tokenizer.Encode(template.Format(p))).ToList();
        var responses = pairs.SelectMany(p => new[] { p.Chosen, p.Rejected }).Select(r => (int[])[.. bundle.Tokenizer.Encode(r), imEnd]).ToList();
        var raw = env.Score(prompts, responses).SelectMany(e => e.RawSegmentRewards).ToList();
        var (mean, std) = NormalizerFitter.MeanStd(raw);
        var global = bundle.Normalizers[NormalizerKind.Global];
        Assert.Equal(mean, global.Mean.Intercept, 4);
        Assert.Equal(std, global.Std.Intercept, 4);
    }

    // A SentencePiece-like tokenizer: every encoding starts with <s> (id 1); letters are 10 + (c - 'a'), '#' is EOS (2).
    private sealed class BosTokenizer : ITokenizer
    {
        public int VocabSize => 40;
        public int EosId => 2;
        public int PadId => 0;
        public IReadOnlyDictionary<string, int> SpecialTokens { get; } = new Dictionary<string, int> { ["<s>"] = 1, ["#"] = 2 };
        public int[] Encode(string text) => [1, .. text.Where(c => c != ' ').Select(c => c == '#' ? 2 : 10 + (c - 'a'))];
        public string Decode(ReadOnlySpan<int> ids) => throw new NotSupportedException();
        public string TokenText(int id) => id.ToString();
    }

    [Fact]
    public void A_preference_response_becomes_the_tokens_an_episode_would_hold()
    {
        var bos = new BosTokenizer();
        int[] startOfText = bos.Encode("");
        var eos = new HashSet<int> { 2, 3 };
        Assert.Equal([10, 11, 3], PreferenceNormalizerFit.ResponseTokens(bos, "ab", startOfText, eos, endId: 3));    // no <s>; end-of-turn appended
        Assert.Equal([10, 2], PreferenceNormalizerFit.ResponseTokens(bos, "a#b", startOfText, eos, endId: 3));        // cut after its first EOS
        Assert.Equal([2], PreferenceNormalizerFit.ResponseTokens(bos, "#", startOfText, eos, endId: 3));              // an EOS-only answer, as the env allows
        Assert.Throws<ArgumentException>(() => PreferenceNormalizerFit.ResponseTokens(bos, "", startOfText, eos, endId: 3));

        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("tok"));
        var bpe = HfTokenizer.Load(dir.File("tok"));
        int imEnd = bpe.SpecialTokens["<|im_end|>"], endOfText = bpe.SpecialTokens["<|endoftext|>"];
        var chatEos = new HashSet<int> { endOfText, imEnd };
        Assert.Equal([.. bpe.Encode("the sea"), imEnd], PreferenceNormalizerFit.ResponseTokens(bpe, "the sea<|im_end|>\nmore", [], chatEos, imEnd));
        Assert.Equal([.. bpe.Encode("hi"), endOfText], PreferenceNormalizerFit.ResponseTokens(bpe, "hi<|endoftext|>", [], chatEos, imEnd));
    }

    [Fact]
    public void Bad_preference_files_name_the_line_and_write_no_bundle()
    {
        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("tok"));
        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"hello"}"""]);
        var request = Request(dir) with { PreferencesFile = dir.File("prefs.jsonl") };
        File.WriteAllLines(dir.File("prefs.jsonl"), [Pair("a", "b c", "d"), Pair("a", "b", null)]);
        var missing = Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(request));
        Assert.Contains("prefs.jsonl:2", missing.Message);
        Assert.Contains("rejected", missing.Message);
        File.WriteAllLines(dir.File("prefs.jsonl"), [Pair("a", "b", "")]);
        Assert.Contains("no tokens", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(request)).Message);
        File.WriteAllLines(dir.File("prefs.jsonl"), [Pair("a", new string('b', 300), "c")]);
        Assert.Contains("context", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(request)).Message);
        Assert.Throws<FileNotFoundException>(() => HfBundleBuilder.Build(request with { PreferencesFile = dir.File("none.jsonl") }));
        // A threshold no entropy reaches leaves one segment per response: nothing to regress the location fit on.
        WritePreferences(dir.File("prefs.jsonl"), 6, seed: 1);
        var oneSegment = Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(request with { Reading = Rewards.RewardReading.Segment(1000) }));
        Assert.Contains("prefs.jsonl", oneSegment.Message);
        Assert.Contains("--c-ent", oneSegment.Message);
        Assert.Contains("not both", Assert.Throws<ArgumentException>(() => HfBundleBuilder.Build(request with { NormalizerFile = dir.File("n.json") })).Message);
        Assert.False(File.Exists(Path.Combine(dir.File("bundle"), EnvBundle.EnvFile)));
    }

    [Fact]
    public void Bad_inputs_name_what_is_wrong_and_write_no_bundle()
    {
        using var dir = new TempDir();
        TinyHf.WriteTokenizer(dir.File("tok"));
        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"), rewardVocab: 70);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"hello"}"""]);
        var vocab = Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(Request(dir)));
        Assert.Contains("vocab_size 70", vocab.Message);
        Assert.False(File.Exists(Path.Combine(dir.File("bundle"), EnvBundle.EnvFile)));

        TinyHf.WriteModels(dir.File("ref"), dir.File("rm"));
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"hello"}""", "{broken"]);
        Assert.Contains("prompts.jsonl:2", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(Request(dir))).Message);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"id":7,"prompt":"hello"}""", """{"id":"7","prompt":"hi"}"""]);
        Assert.Contains("used twice", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(Request(dir))).Message);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":["not","text"]}"""]);
        Assert.Contains("prompts.jsonl:1", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(Request(dir))).Message);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"hello","split":"dev"}"""]);
        Assert.Contains("split", Assert.Throws<InvalidDataException>(() => HfBundleBuilder.Build(Request(dir))).Message);
        File.WriteAllLines(dir.File("prompts.jsonl"), ["""{"prompt":"a very long prompt that will not fit the context of these tiny models with their budget"}"""]);
        Assert.Contains("context", Assert.Throws<ArgumentException>(() => HfBundleBuilder.Build(Request(dir) with { MaxNewTokens = 60 })).Message);
        Assert.Throws<ArgumentException>(() => HfBundleBuilder.Build(Request(dir) with { ChatTemplate = "vicuna" }));
        Assert.False(File.Exists(Path.Combine(dir.File("bundle"), EnvBundle.EnvFile)));
    }
}
