using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;

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
