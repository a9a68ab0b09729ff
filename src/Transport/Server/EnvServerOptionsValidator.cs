using Microsoft.Extensions.Options;

namespace RlhfGym.Transport.Server;

/// <summary>
/// The checks on <see cref="EnvServerOptions"/>, each failure naming its setting as configuration spells it
/// (EnvServer:MaxSessions …). A host checks them at start (<see cref="EnvServerServiceCollectionExtensions.AddEnvServer(Microsoft.Extensions.DependencyInjection.IServiceCollection, Action{EnvServerOptions}?)"/>),
/// the server again when it builds its request handler.
/// </summary>
public sealed class EnvServerOptionsValidator : IValidateOptions<EnvServerOptions>
{
    public ValidateOptionsResult Validate(string? name, EnvServerOptions options) =>
        Problems(options) is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems) : ValidateOptionsResult.Success;

    /// <summary>Every problem of <paramref name="o"/>, one sentence each; empty when it is valid.</summary>
    public static List<string> Problems(EnvServerOptions o)
    {
        const string S = EnvServerOptions.Section;
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Bind)) problems.Add($"{S}:Bind must be an endpoint such as tcp://127.0.0.1:5555");
        if (string.IsNullOrWhiteSpace(o.Env)) problems.Add($"{S}:Env must be a registry id or a bundle directory");
        void Positive(string setting, double value)
        {
            if (!(value > 0)) problems.Add($"{S}:{setting} must be > 0; got {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        Positive(nameof(o.MaxSessions), o.MaxSessions);
        Positive(nameof(o.MaxNumEnvs), o.MaxNumEnvs);
        Positive(nameof(o.MaxFrameBytes), o.MaxFrameBytes);
        // Bounded above too: clients derive their heartbeat from it, and a day of silence is already a dead client.
        if (!(o.SessionTimeoutSeconds > 0 && o.SessionTimeoutSeconds <= 86400))
            problems.Add($"{S}:{nameof(o.SessionTimeoutSeconds)} must be in (0, 86400] seconds; got {o.SessionTimeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        if (!(o.BatchWindowMs >= 0 && o.BatchWindowMs <= 1000))
            problems.Add($"{S}:{nameof(o.BatchWindowMs)} must be in 0..1000 (milliseconds); got {o.BatchWindowMs.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        if (!(o.DrainGraceSeconds >= 0 && o.DrainGraceSeconds <= 3600))
            problems.Add($"{S}:{nameof(o.DrainGraceSeconds)} must be in 0..3600; got {o.DrainGraceSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        if (o.AllowedClientKeysFile is not null && o.CurveSecretKeyFile is null)
            problems.Add($"{S}:AllowedClientKeysFile needs {S}:CurveSecretKeyFile: an allow-list means nothing on an unencrypted socket");
        return problems;
    }
}
