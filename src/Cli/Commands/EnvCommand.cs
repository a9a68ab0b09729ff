using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Core;
using RlhfGym.Models;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym env ...`: list registered envs, check an env against the contract.</summary>
public static class EnvCommand
{
    public static Command Create()
    {
        var env = new Command("env", "the gym environment: registry and checker");
        env.Subcommands.Add(List());
        env.Subcommands.Add(Check());
        return env;
    }

    private static Command List()
    {
        var command = new Command("list", "registered env ids and whether each is built");
        VerbRunner.Set(command, (_, _) =>
        {
            var ids = new JsonArray();
            foreach (var id in EnvRegistry.Ids)
                ids.Add(new JsonObject
                {
                    ["id"] = id,
                    ["built"] = File.Exists(Path.Combine(EnvRegistry.CacheRoot, "bundles", id, EnvBundle.EnvFile)),
                });
            return new JsonObject { ["cache"] = EnvRegistry.CacheRoot, ["envs"] = ids };
        });
        return command;
    }

    private static Command Check()
    {
        var options = new EnvCliOptions();
        var steps = new Option<int>("--steps") { Description = "steps per rollout the checks run", DefaultValueFactory = _ => 64 };
        var seed = CommonOptions.Seed();
        var device = CommonOptions.Device();
        var command = new Command("check", "run an env through the contract checks (like gymnasium's check_env)") { steps, seed, device };
        options.AddTo(command);
        VerbRunner.Set(command, (parse, progress) =>
        {
            var dev = DeviceSelector.Resolve(parse.GetValue(device)!);
            using var env = options.Make(parse, dev, progress);
            var report = EnvChecker.Check(env, parse.GetValue(seed), CommonOptions.Positive(parse.GetValue(steps), "--steps"));
            foreach (var c in report.Checks) progress($"{(c.Passed ? "pass" : "FAIL")}  {c.Name}: {c.Detail}");
            if (!report.Passed)
                throw new InvalidOperationException($"env check failed: {string.Join("; ", report.Failures.Select(f => $"{f.Name}: {f.Detail}"))}");
            return new JsonObject
            {
                ["env"] = env.Spec.Id,
                ["passed"] = true,
                ["checks"] = new JsonArray(report.Checks.Select(c => (JsonNode)new JsonObject { ["name"] = c.Name, ["passed"] = c.Passed, ["detail"] = c.Detail }).ToArray()),
                ["num_envs"] = env.Spec.NumEnvs,
                ["mode"] = env.Spec.Options.Reading.Name,
                ["autoreset"] = env.Spec.Autoreset.ToString(),
            };
        });
        return command;
    }
}
