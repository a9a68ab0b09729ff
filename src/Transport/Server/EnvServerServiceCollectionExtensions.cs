using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace RlhfGym.Transport.Server;

/// <summary>Registers the env server in a host: <c>builder.Services.AddEnvServer(builder.Configuration.GetSection("EnvServer"))</c>.</summary>
public static class EnvServerServiceCollectionExtensions
{
    /// <summary>The env server as a hosted service, its options checked when the host starts (an invalid setting
    /// fails <c>StartAsync</c> with an <see cref="OptionsValidationException"/> naming it). <see cref="EnvServer"/>
    /// is also registered as itself, so a caller can wait on <see cref="EnvServer.Bound"/>.</summary>
    public static IServiceCollection AddEnvServer(this IServiceCollection services, Action<EnvServerOptions>? configure = null)
    {
        var options = services.AddOptions<EnvServerOptions>();
        if (configure is not null) options.Configure(configure);
        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<EnvServerOptions>, EnvServerOptionsValidator>());
        // The host must wait out the server's drain before it gives up on it (its own default is 30 s).
        services.AddOptions<HostOptions>().Configure<IOptions<EnvServerOptions>>((host, server) =>
        {
            double grace;
            try { grace = server.Value.DrainGraceSeconds; }
            catch (OptionsValidationException) { return; } // reported, by name, when the host starts (ValidateOnStart)
            var needed = TimeSpan.FromSeconds(grace + 5);
            if (host.ShutdownTimeout < needed) host.ShutdownTimeout = needed;
        });
        services.TryAddSingleton<EnvServer>();
        services.AddHostedService(sp => sp.GetRequiredService<EnvServer>());
        return services;
    }

    /// <summary>As <see cref="AddEnvServer(IServiceCollection, Action{EnvServerOptions}?)"/>, the options bound from a
    /// configuration section (appsettings.json "EnvServer", RLHFGYM_EnvServer__* variables …), then <paramref name="configure"/>.</summary>
    public static IServiceCollection AddEnvServer(this IServiceCollection services, IConfiguration configuration, Action<EnvServerOptions>? configure = null)
    {
        services.AddOptions<EnvServerOptions>().Bind(configuration);
        return services.AddEnvServer(configure);
    }
}
