using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Policies;
using RlhfGym.Agents.Rollouts;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Env.Training;
using RlhfGym.Examples.AlgorithmPlugin;
using RlhfGym.Models.Checkpoints;
using RlhfGym.PhraseWorld;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RlhfGym.Agents.Tests;

/// <summary>An algorithm registered by user code trains through the trainer like the built-ins.</summary>
public class CustomAlgorithmTests
{
    private const string Name = "test-best-of-k";

    private static readonly Lazy<string> BundleDir = new(() =>
    {
        string dir = TempDir.ForProcess("agents-custom");
        RandomBundle.Write(dir, maxNewTokens: 10, seed: 4);
        return dir;
    });

    private static TextVectorEnv Env() => new(EnvBundle.Load(BundleDir.Value), 8);
    private static string Init => Path.Combine(BundleDir.Value, EnvBundle.ReferenceDir);

    // The example's algorithm (examples/AlgorithmPlugin), registered in-process under a test name.
    static CustomAlgorithmTests() => AlgorithmRegistry.Register(Name, c => new BestOfK(c.Policy, k: 2, c.Env.PadId, Name, learningRate: 1e-3));

    private static TrainerOptions Options => new() { Algorithm = Name, Iterations = 3, CheckpointEvery = 1, EvalEvery = 100 };

    private static List<string> MetricLines(string run) => MetricsLog.Read(run)
        .Select(m =>
        {
            foreach (var timing in new[] { "rollout_tokens_per_s", "env_time_share", "update_seconds" }) m.Remove(timing);
            return m.ToJsonString();
        }).ToList();

    [Fact]
    public void A_registered_algorithm_logs_its_own_figure_and_resumes_like_an_uninterrupted_run()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(a.Path, Options, resume: false);
        var rows = MetricsLog.Read(a.Path);
        Assert.Equal(3, rows.Count);
        Assert.All(rows, r => Assert.True(double.IsFinite((double)r["best_return"]!)));
        Assert.All(rows, r => Assert.NotNull(r["policy_loss"]));
        Assert.All(rows, r => Assert.Null(r["value_loss"])); // a figure the algorithm does not have is left out
        Assert.Equal(Name, (string?)JsonFile.ReadObject(Path.Combine(a.Path, RunCheckpoint.Directory, RunCheckpoint.StateFile))["algorithm"]);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(a.Path, "tensorboard"), "events.out.tfevents*", SearchOption.AllDirectories));

        using (var env = Env()) Assert.NotNull(new Trainer(env, Init, null, CPU).Run(b.Path, Options, resume: false, stopAfter: 1).Figures["stopped_after"]);
        Assert.True(File.Exists(Path.Combine(b.Path, RunCheckpoint.Directory, "best_of_k_optimizer.bin")));
        using (var env = Env()) new Trainer(env, Init, null, CPU).Run(b.Path, Options, resume: true);
        Assert.Equal(MetricLines(a.Path), MetricLines(b.Path));
        var (pa, _) = ModelCheckpoint.Load(Path.Combine(a.Path, Trainer.FinalPolicyDir));
        var (pb, _) = ModelCheckpoint.Load(Path.Combine(b.Path, Trainer.FinalPolicyDir));
        using (pa)
        using (pb)
        {
            var sb = pb.state_dict();
            foreach (var (k, v) in pa.state_dict()) Assert.True(v.allclose(sb[k], 0, 0), $"{k} differs");
        }
    }

    [Fact]
    public void An_unknown_algorithm_is_a_clear_error_that_lists_the_registered_ones()
    {
        var ex = Assert.Throws<ArgumentException>(() => new TrainerOptions { Algorithm = "dqn" }.Validate());
        foreach (var name in new[] { "'dqn'", "ppo", "reinforce", Name }) Assert.Contains(name, ex.Message);
        using var run = new TempDir();
        using var env = Env();
        Assert.Throws<ArgumentException>(() => new Trainer(env, Init, null, CPU).Run(run.Path, Options with { Algorithm = "dqn" }, resume: false));
        Assert.Contains("ppo", AlgorithmRegistry.Names);
        Assert.Contains("reinforce", AlgorithmRegistry.Names);
    }
}
