using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Security;

namespace RlhfGym.Cli.Commands;

/// <summary>
/// `rlhfgym health --address tcp://HOST:PORT`: one `health` request, printed; the exit code makes it a Kubernetes exec
/// probe. 0: ready (with --live: answered at all); 2: answered but not ready or draining; 1: no answer or a bad option.
/// </summary>
public static class HealthCommand
{
    public const int NotReady = 2;

    public static Command Create()
    {
        var address = new Option<string>("--address") { Description = "the server's ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555", Required = true };
        var timeout = new Option<double>("--timeout") { Description = "seconds to wait for the answer (0.05..300)", DefaultValueFactory = _ => 2 };
        var live = new Option<bool>("--live") { Description = "exit 0 whenever the server answers (a liveness probe); without it, only when it is ready and not draining" };
        var serverKey = new Option<string?>("--server-key") { Description = "a CurveZMQ server's public key (Z85, or its PREFIX.key file)" };
        var clientKey = new Option<string?>("--client-key") { Description = "with --server-key: this client's PREFIX.key_secret" };
        var command = new Command("health", "ask an env server whether it is ready, draining and how loaded (exit code for probes: 0 ready, 2 not ready, 1 no answer)")
        {
            address, timeout, live, serverKey, clientKey,
        };
        command.SetAction(parse =>
        {
            int verdict = 0;
            int rc = VerbRunner.Run(parse, (p, _) =>
            {
                double seconds = p.GetValue(timeout);
                if (!(seconds >= 0.05 && seconds <= 300))
                    throw new ArgumentException($"--timeout must be in 0.05..300 seconds, got {seconds.ToString(CultureInfo.InvariantCulture)}");
                var curve = (p.GetValue(serverKey), p.GetValue(clientKey)) switch
                {
                    (null, null) => null,
                    ({ } s, { } c) => CurveClientKeys.FromFiles(s, c),
                    _ => throw new ArgumentException("--server-key and --client-key go together (CurveZMQ needs both)"),
                };
                string where = p.GetValue(address)!;
                var h = EnvServerProbe.Health(where, TimeSpan.FromSeconds(seconds), curve);
                bool ok = p.GetValue(live) || (h.Ready && !h.Draining);
                verdict = ok ? 0 : NotReady;
                return new JsonObject
                {
                    ["address"] = where,
                    ["ok"] = ok,
                    ["ready"] = h.Ready,
                    ["draining"] = h.Draining,
                    ["sessions"] = h.Sessions,
                    ["max_sessions"] = h.MaxSessions,
                    ["sub_envs"] = h.SubEnvs,
                    ["requests"] = h.Requests,
                    ["uptime_s"] = h.UptimeSeconds,
                    ["busy"] = h.Busy,
                    ["batched_steps"] = h.BatchedSteps,
                    ["step_batches"] = h.StepBatches,
                    ["batched_resets"] = h.BatchedResets,
                    ["batched_scores"] = h.BatchedScores,
                    ["bursts"] = h.Bursts,
                    ["gather_s"] = h.GatherSeconds,
                    ["compute_s"] = h.ComputeSeconds,
                    ["reply_s"] = h.ReplySeconds,
                    ["env"] = h.Env,
                    ["device"] = h.Device,
                    ["error"] = h.Error,
                };
            });
            return rc != 0 ? rc : verdict;
        });
        return command;
    }
}
