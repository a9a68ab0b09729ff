using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Server;

namespace RlhfGym.Transport.Tests;

/// <summary><see cref="EnvServerServiceCollectionExtensions.AddEnvServer(IServiceCollection, Action{EnvServerOptions}?)"/> in a real host.</summary>
public class EnvServerHostingTests
{
    private static IHost Build(Action<HostApplicationBuilder> add)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        builder.Logging.ClearProviders();
        add(builder);
        return builder.Build();
    }

    [Fact]
    public async Task An_invalid_setting_fails_at_host_start_naming_it()
    {
        using var host = Build(b => b.Services.AddEnvServer(o => o.MaxSessions = -1));
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("EnvServer:MaxSessions must be > 0; got -1", e.Message);
    }

    [Fact]
    public async Task Settings_bound_from_configuration_are_checked_too_and_every_problem_is_named()
    {
        using var host = Build(b =>
        {
            b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["EnvServer:SessionTimeoutSeconds"] = "0",
                ["EnvServer:MaxNumEnvs"] = "-3",
                ["EnvServer:AllowedClientKeysFile"] = "allowed.keys",
            });
            b.Services.AddEnvServer(b.Configuration.GetSection(EnvServerOptions.Section));
        });
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains("EnvServer:SessionTimeoutSeconds", e.Message);
        Assert.Contains("EnvServer:MaxNumEnvs must be > 0; got -3", e.Message);
        Assert.Contains("EnvServer:AllowedClientKeysFile needs EnvServer:CurveSecretKeyFile", e.Message);
    }

    [Fact]
    public async Task A_valid_host_serves_envs()
    {
        string bind = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var host = Build(b => b.Services.AddEnvServer(o =>
        {
            o.Bind = bind;
            o.Env = TestServer.Bundle.Value;
            o.Device = "cpu";
        }));
        await host.StartAsync();
        await host.Services.GetRequiredService<EnvServer>().Bound.Task;
        using (var remote = new RemoteVectorEnv(bind, numEnvs: 2))
            Assert.Equal(2, remote.Reset(1).Prompts.Length);
        await host.StopAsync();
    }
}
