using System.Text.Json.Nodes;
using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using RlhfGym.PhraseWorld;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Tests;

public class TrainerTests
{
    private static readonly Lazy<string> BundleDir = new(() =>
    {
        string dir = TempDir.ForProcess("agents-bundle");
        RandomBundle.Write(dir, maxNewTokens: 10, seed: 3);
        return dir;
    });

    private static TextVectorEnv Env(int n = 8) => new(EnvBundle.Load(BundleDir.Value), n);
    private static string Init => Path.Combine(BundleDir.Value, EnvBundle.ReferenceDir);

    private static TrainerOptions Small(string algorithm) => new()
    {
        Algorithm = algorithm,
        Iterations = 4,
        CheckpointEvery = 1,
        EvalEvery = 100,
        EvalSamplesPerPrompt = 1,
        Ppo = new PpoOptions { MiniBatchSize = 4 },
        Reinforce = new ReinforceOptions { K = 2, MiniBatchSize = 4 },
        Grpo = new GrpoOptions { GroupSize = 2, MiniBatchSize = 4, Epochs = 2 },
    };

    private static List<string> MetricLines(string run) => MetricsLog.Read(run)
        .Select(m =>
        {
            foreach (var timing in new[] { "rollout_tokens_per_s", "env_time_share", "update_seconds" }) m.Remove(timing);
            return m.ToJsonString();
        }).ToList();

    [Theory]
    [InlineData("ppo")]
    [InlineData("reinforce")]
    [InlineData("grpo")]
    [InlineData("dr-grpo-process")]
    public void A_resumed_run_matches_an_uninterrupted_one(string algorithm)
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(a.Path, Small(algorithm), resume: false);
        using (var env = Env()) Assert.NotNull(new Trainer(env, Init, null, CPU).Run(b.Path, Small(algorithm), resume: false, stopAfter: 2).Figures["stopped_after"]);
        Assert.Equal(2, RunCheckpoint.Find(b.Path)!.Value.Iteration);
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(b.Path, Small(algorithm), resume: true);
        Assert.Equal(MetricLines(a.Path), MetricLines(b.Path));
        // run.json keeps the first start's machine and adds the resume's, with where it picked up.
        var runJson = JsonNode.Parse(File.ReadAllText(Path.Combine(b.Path, Trainer.RunFile)))!;
        var resume = Assert.Single(runJson["resumes"]!.AsArray())!;
        Assert.Equal(2, resume["after_iteration"]!.GetValue<int>());
        Assert.Equal(runJson["machine"]!.ToJsonString(), resume["machine"]!.ToJsonString());
        Assert.Null(JsonNode.Parse(File.ReadAllText(Path.Combine(a.Path, Trainer.RunFile)))!["resumes"]);
        var (pa, _) = ModelCheckpoint.Load(Path.Combine(a.Path, Trainer.FinalPolicyDir));
        var (pb, _) = ModelCheckpoint.Load(Path.Combine(b.Path, Trainer.FinalPolicyDir));
        using (pa)
        using (pb)
        {
            var sb = pb.state_dict();
            foreach (var (k, v) in pa.state_dict()) Assert.True(v.allclose(sb[k], 0, 0), $"{k} differs");
        }
    }

    private sealed class FailingState(IAlgorithm inner) : IAlgorithm
    {
        public string Name => inner.Name;
        public int GroupSize => inner.GroupSize;
        public UpdateStats Update(Rollout r, double kl, int i, int n) => inner.Update(r, kl, i, n);
        public void SaveState(string directory) { File.WriteAllText(Path.Combine(directory, "partial.bin"), "x"); throw new IOException("disk full"); }
        public void LoadState(string directory) => inner.LoadState(directory);
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void A_checkpoint_interrupted_mid_write_never_replaces_the_last_good_one()
    {
        using var run = new TempDir();
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(run.Path, Small("reinforce") with { Iterations = 2 }, resume: false);
        var before = RunCheckpoint.Find(run.Path)!.Value;
        var (model, _) = ModelCheckpoint.Load(Init);
        using (model)
        using (var policy = new PolicyModel(model, 1.0, 8))
        using (var algorithm = new FailingState(new Reinforce(policy, new ReinforceOptions(), 0, 1)))
            Assert.Throws<IOException>(() => RunCheckpoint.Save(run.Path, 99, 0.1, model, algorithm));
        var after = RunCheckpoint.Find(run.Path)!.Value;
        Assert.Equal(before.Iteration, after.Iteration);
        Assert.Empty(Directory.GetDirectories(run.Path, ".checkpoint.*"));
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        using var run = new TempDir();
        // A policy whose vocabulary does not match the env's.
        using var other = new TempDir();
        using (var m = new CausalTransformer(new TransformerConfig { VocabSize = 12, DModel = 16, NLayers = 1, NHeads = 2, NKvHeads = 2, DFf = 32, MaxSeqLen = 64 }))
            ModelCheckpoint.Save(other.Path, m);
        using (var env = Env())
        {
            var ex = Assert.Throws<InvalidDataException>(() => new Trainer(env, other.Path, null, CPU).Run(run.Path, Small("ppo"), resume: false));
            Assert.Contains("vocab_size", ex.Message);
        }
        // Resuming a run that does not exist.
        using (var env = Env())
            Assert.Throws<DirectoryNotFoundException>(() => new Trainer(env, Init, null, CPU).Run(Path.Combine(run.Path, "missing"), Small("ppo"), resume: true));
        // A corrupt checkpoint.
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(run.Path, Small("reinforce") with { Iterations = 2 }, resume: false, stopAfter: 1);
        File.WriteAllText(Path.Combine(run.Path, RunCheckpoint.Directory, RunCheckpoint.StateFile), "{\"iteration\":");
        using (var env = Env())
            Assert.Contains("corrupt checkpoint", Assert.Throws<InvalidDataException>(() => new Trainer(env, Init, null, CPU).Run(run.Path, Small("reinforce") with { Iterations = 2 }, resume: true)).Message);
        File.WriteAllText(Path.Combine(run.Path, RunCheckpoint.Directory, RunCheckpoint.StateFile), "{\"iteration\":1,\"kl_coef\":0.1}");
        File.WriteAllBytes(Path.Combine(run.Path, RunCheckpoint.Directory, RunCheckpoint.PolicyDir, ModelCheckpoint.WeightsFile), [1, 2, 3]);
        using (var env = Env())
            Assert.Throws<CheckpointFormatException>(() => new Trainer(env, Init, null, CPU).Run(run.Path, Small("reinforce") with { Iterations = 2 }, resume: true));
        // A new run in a directory that already has one.
        using (var env = Env())
            Assert.Contains("--resume", Assert.Throws<InvalidOperationException>(() => new Trainer(env, Init, null, CPU).Run(run.Path, Small("reinforce") with { Iterations = 2 }, resume: false)).Message);
    }

    [Fact]
    public void Kl_shaping_reads_the_env_reference_log_probs()
    {
        using var env = Env(4);
        var (model, _) = ModelCheckpoint.Load(Init);
        using var policy = new PolicyModel(model, 1.0, 4);
        using var sampler = new Models.Sampler(1);
        var rollout = RolloutCollector.Collect(env, policy, sampler, seed: 1, groupSize: 1);
        // The collector passes the env's log π_ref through untouched.
        Assert.All(rollout.Episodes, e => Assert.Equal(e.Response.Length, e.RefLogProbs.Length));
        var shifted = rollout with { Episodes = rollout.Episodes.Select(e => e with { RefLogProbs = e.RefLogProbs.Select(v => v - 1f).ToArray() }).ToList() };
        double meanLength = rollout.Episodes.Average(e => e.Response.Length);
        using var a = new Reinforce(policy, new ReinforceOptions { Baseline = ReinforceBaseline.None, Actor = new() { LearningRate = 1e-12 } }, 0, 1);
        double kl = a.Update(rollout, 0.5, 1, 1)[UpdateStats.Kl];
        double klShifted = a.Update(shifted, 0.5, 2, 2)[UpdateStats.Kl];
        Assert.Equal(kl + meanLength, klShifted, 3); // KL = Σ(log π_old − log π_ref): lowering log π_ref by 1 adds 1 per token
    }
}
