using System.Text.Json.Nodes;
using RlhfGym.Agents.Evaluation;
using RlhfGym.Agents.Training;
using RlhfGym.Env.Core;
using RlhfGym.Models.Checkpoints;
using static TorchSharp.torch;

namespace RlhfGym.Experiments;

/// <summary>
/// Held-out evaluation of a finished (or interrupted) run: its final policy, else its last checkpoint, against the
/// env's reference (SFT) model under the env's judge. What `rlhfgym eval` prints.
/// </summary>
public static class RunEvaluation
{
    /// <summary>The policy directory a run would be evaluated with.</summary>
    public static string PolicyDirectory(string runDir)
    {
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"{runDir}: run directory not found");
        string policyDir = Path.Combine(runDir, Trainer.FinalPolicyDir);
        if (ModelCheckpoint.Exists(policyDir)) return policyDir;
        return RunCheckpoint.Find(runDir) is { } ck ? Path.Combine(ck.Path, RunCheckpoint.PolicyDir)
            : throw new FileNotFoundException($"{runDir}: no final policy and no checkpoint to evaluate");
    }

    public static JsonObject Evaluate(string runDir, TextVectorEnv env, int samplesPerPrompt, long seed, Device device)
    {
        if (samplesPerPrompt <= 0) throw new ArgumentOutOfRangeException(nameof(samplesPerPrompt), samplesPerPrompt, "samples per prompt must be > 0");
        string policyDir = PolicyDirectory(runDir);
        var evaluator = JudgePolicyEvaluator.ForBundle(env.Bundle, env.Spec.MaxNewTokens, device)
            ?? throw new InvalidOperationException($"{env.Spec.Id} has no judge to evaluate with");
        using var policy = ModelCheckpoint.LoadFor(policyDir, env.Spec.VocabSize, $"the env {env.Spec.Id}", device);
        var result = evaluator.Evaluate(policy, samplesPerPrompt, seed);
        result["run"] = Path.GetFullPath(runDir);
        result["policy"] = Path.GetFullPath(policyDir);
        return result;
    }
}
