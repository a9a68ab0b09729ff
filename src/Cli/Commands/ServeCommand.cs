using System.CommandLine;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RlhfGym.Transport.Server;

namespace RlhfGym.Cli.Commands;

/// <summary>
/// `rlhfgym serve`: the env server as a hosted service. Settings come from appsettings.json (section EnvServer), then
/// RLHFGYM_EnvServer__* environment variables, then these flags. Stops cleanly on SIGINT/SIGTERM.
/// </summary>
public static class ServeCommand
{
    public const string DefaultEnv = "PhraseWorld-Segment-v0";

    public static Command Create()
    {
        var env = new Option<string?>("--env") { Description = $"default env for sessions: registry id or bundle directory (default {DefaultEnv})" };
        var bind = new Option<string?>("--bind") { Description = "ZeroMQ endpoint (default tcp://127.0.0.1:5555: loopback only)" };
        var maxSessions = new Option<int?>("--max-sessions") { Description = "sessions the server holds at most" };
        var maxNumEnvs = new Option<int?>("--max-num-envs") { Description = "sub-envs one session may hold at most (default 256)" };
        var timeout = new Option<double?>("--session-timeout") { Description = "seconds without a request before a session is reclaimed" };
        var device = new Option<string?>("--device") { Description = "auto, cpu or cuda[:N]" };
        var curveKey = new Option<string?>("--curve-secret-key") { Description = "CurveZMQ: the server's PREFIX.key_secret (`rlhfgym keys new`); clients then need its public key" };
        var allow = new Option<string?>("--allow-keys") { Description = "CurveZMQ allow-list: a file of client public keys, one per line; others get no service" };
        var drainGrace = new Option<double?>("--drain-grace") { Description = "seconds a stopping server (SIGTERM) waits for its sessions to close before it exits (default 25; 0: at once)" };
        var batchSessions = new Option<bool?>("--batch-sessions") { Description = "share the models among sessions on the same bundle and step them as one batch (default true; false: each session alone)" };
        var batchWindow = new Option<double?>("--batch-window-ms") { Description = "wait up to this many ms after a step request for more to batch with it (default 0: no delay; 0..1000)" };
        var command = new Command("serve", "serve envs over ZeroMQ + MessagePack (docs/protocol.md) until stopped; on SIGTERM it drains") { env, bind, maxSessions, maxNumEnvs, timeout, device, curveKey, allow, drainGrace, batchSessions, batchWindow };
        command.SetAction(async (parse, ct) =>
        {
            var spin = ServerOpenMpSpin.Apply(); // before anything loads libtorch
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
            builder.Configuration.AddEnvironmentVariables("RLHFGYM_");
            var overrides = new Dictionary<string, string?>();
            // The default env is the CLI's (the built-in world's segment env); the server library has none of its own.
            overrides["EnvServer:Env"] = parse.GetValue(env) is { } e ? e
                : builder.Configuration["EnvServer:Env"] is { Length: > 0 } configured ? configured : DefaultEnv;
            if (parse.GetValue(bind) is { } b) overrides["EnvServer:Bind"] = b;
            if (parse.GetValue(maxSessions) is { } m) overrides["EnvServer:MaxSessions"] = m.ToString();
            if (parse.GetValue(maxNumEnvs) is { } mn) overrides["EnvServer:MaxNumEnvs"] = mn.ToString();
            if (parse.GetValue(timeout) is { } t) overrides["EnvServer:SessionTimeoutSeconds"] = t.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (parse.GetValue(device) is { } d) overrides["EnvServer:Device"] = d;
            if (parse.GetValue(drainGrace) is { } g) overrides["EnvServer:DrainGraceSeconds"] = g.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (parse.GetValue(batchSessions) is { } bs) overrides["EnvServer:BatchSessions"] = bs ? "true" : "false";
            if (parse.GetValue(batchWindow) is { } bw) overrides["EnvServer:BatchWindowMs"] = bw.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (parse.GetValue(curveKey) is { } ck) overrides["EnvServer:CurveSecretKeyFile"] = ck;
            if (parse.GetValue(allow) is { } al) overrides["EnvServer:AllowedClientKeysFile"] = al;
            builder.Configuration.AddInMemoryCollection(overrides);
            builder.Logging.ClearProviders();
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.Services.AddEnvServer(builder.Configuration.GetSection(EnvServerOptions.Section)); // options checked at start
            IHost? built = null;
            EnvServerOptions options;
            try
            {
                // Building binds the configuration: a setting that does not convert (RLHFGYM_EnvServer__MaxSessions=abc) fails here.
                built = builder.Build();
            }
            catch (InvalidOperationException ex)
            {
                return Refused(parse, ex);
            }
            using var host = built;
            LogSpin(host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("RlhfGym.Serve"), spin);
            try
            {
                await host.StartAsync(ct);
                options = host.Services.GetRequiredService<IOptions<EnvServerOptions>>().Value;
                await host.Services.GetRequiredService<EnvServer>().Bound.Task;
                await host.WaitForShutdownAsync(ct);
            }
            catch (Exception ex) when (ex is IOException or ArgumentException or InvalidDataException or UnauthorizedAccessException or OptionsValidationException
                                       or InvalidOperationException)
            {
                return Refused(parse, ex);
            }
            if (parse.GetValue(CommonOptions.Json)) Console.WriteLine(new JsonObject { ["served"] = options.Bind, ["env"] = options.Env }.ToJsonString());
            return 0;
        });
        return command;
    }

    // A server that cannot start: the CLI's error line and object.
    private static int Refused(ParseResult parse, Exception ex) => VerbRunner.Fail(ex.Message, ex.GetType().Name, parse.GetValue(CommonOptions.Json));

    private static void LogSpin(ILogger log, ServerOpenMpSpin.Outcome spin)
    {
        switch (spin)
        {
            case ServerOpenMpSpin.Outcome.Set:
                log.LogInformation("OpenMP workers spin briefly between requests ({Variable}={Value})", ServerOpenMpSpin.Variable, ServerOpenMpSpin.ServerValue);
                break;
            case ServerOpenMpSpin.Outcome.UserSetting:
                log.LogInformation("OpenMP wait settings from the environment are kept ({Variable}={Spin}, OMP_WAIT_POLICY={Policy})", ServerOpenMpSpin.Variable,
                    Environment.GetEnvironmentVariable(ServerOpenMpSpin.Variable) ?? "unset", Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "unset");
                break;
            case ServerOpenMpSpin.Outcome.TooLate:
                log.LogWarning("libtorch was loaded before serve could shorten the OpenMP spin; remote steps may be slower on few cores");
                break;
        }
    }
}
