using System.Diagnostics;
using RlhfGym.PhraseWorld;
using RlhfGym.Tests;
using RlhfGym.Transport;
using RlhfGym.Transport.Client;

namespace RlhfGym.Cli.Tests;

/// <summary>What of deploy/ can run here: the manifests against the Kubernetes schemas, and the image's entrypoint
/// as a plain process (no container runtime on this machine).</summary>
public class DeployTests
{
    private static readonly string Modules = RepositoryRoot.File("build", "npm", "node_modules");
    private static readonly string Validator = RepositoryRoot.File("deploy", "validate-manifests.mjs");

    private static ProcessRunner.Result Validate(params string[] files)
    {
        Assert.True(Directory.Exists(Path.Combine(Modules, "kubernetes-models")),
            $"{Modules}/kubernetes-models is missing: run `npm install --prefix build/npm kubernetes-models@5.1.0 yaml@2.9.1` (test.sh does)");
        return ProcessRunner.Run("node", [Validator, Modules, .. files], TimeSpan.FromMinutes(2));
    }

    [Fact]
    public void The_kubernetes_manifests_validate_against_the_kubernetes_schemas()
    {
        var r = Validate(RepositoryRoot.File("deploy", "k8s", "rlhfgym-env.yaml"));
        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Contains("v1 Service rlhfgym-env: valid", r.StdOut);
        Assert.Contains("apps/v1 StatefulSet rlhfgym-env: valid", r.StdOut);
        Assert.Contains("v1 PersistentVolumeClaim rlhfgym-bundle: valid", r.StdOut);
        Assert.Contains("all valid", r.StdOut);
    }

    [Fact]
    public void The_validator_refuses_a_wrong_field_type_and_an_unknown_kind_naming_them()
    {
        using var dir = new TempDir();
        string broken = dir.File("broken.yaml");
        File.WriteAllText(broken, """
            apiVersion: apps/v1
            kind: StatefulSet
            metadata: {name: x}
            spec:
              replicas: four
              serviceName: x
              selector: {matchLabels: {a: b}}
              template:
                metadata: {labels: {a: b}}
                spec: {containers: [{name: c, image: i}]}
            ---
            apiVersion: apps/v1
            kind: StatefulSett
            metadata: {name: y}
            """);
        var r = Validate(broken);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("replicas must be integer", r.StdOut);
        Assert.Contains("unknown apiVersion/kind apps/v1/StatefulSett", r.StdOut);
        Assert.Contains("2 invalid", r.StdOut);
    }

    [Fact]
    public async Task The_image_entrypoint_serves_the_bundle_over_curve_answers_the_manifests_probe_and_drains_on_sigterm()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 8, seed: 2);
        foreach (var name in new[] { "server", "probe", "trainer" })
            Assert.Equal(0, CliRunner.Run("keys", "new", "--out", dir.File(name)).ExitCode);
        File.WriteAllText(dir.File("allow.txt"), File.ReadAllText(dir.File("trainer.key"))); // the probe is not on it
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        var psi = new ProcessStartInfo("sh") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(RepositoryRoot.File("deploy", "entrypoint.sh"));
        psi.Environment["RLHFGYM_BIN"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "rlhfgym.dll")}";
        psi.Environment["RLHFGYM_BUNDLE"] = bundle.Directory;
        psi.Environment["RLHFGYM_BIND"] = address;
        psi.Environment["RLHFGYM_DEVICE"] = "cpu";
        psi.Environment["RLHFGYM_DRAIN_GRACE"] = "20";
        psi.Environment["RLHFGYM_CURVE_SECRET_KEY"] = dir.File("server.key_secret");
        psi.Environment["RLHFGYM_ALLOW_KEYS"] = dir.File("allow.txt");
        using var server = Process.Start(psi)!;
        var log = server.StandardError.ReadToEndAsync();
        _ = server.StandardOutput.ReadToEndAsync();
        try
        {
            // The manifest's readiness probe, word for word but for the paths.
            string[] probe = ["health", "--address", address, "--timeout", "2", "--server-key", dir.File("server.key"), "--client-key", dir.File("probe.key_secret"), "--json"];
            var ready = CliRunner.Run(probe);
            for (int i = 0; i < 60 && ready.ExitCode != 0; i++)
            {
                Thread.Sleep(500);
                ready = CliRunner.Run(probe);
            }
            Assert.True(ready.ExitCode == 0, ready.Describe());
            Assert.Equal(bundle.Directory, (string?)ready.LastJson()["env"]);

            // A trainer on the allow-list gets a session; the entrypoint exec'd serve, so the signal reaches it and it drains.
            var curve = RlhfGym.Transport.Security.CurveClientKeys.FromFiles(dir.File("server.key"), dir.File("trainer.key_secret"));
            var trainer = new RemoteVectorEnv(address, numEnvs: 2, curve: curve, heartbeat: TimeSpan.Zero);
            trainer.Reset(seed: 1);
            Assert.Equal(0, ProcessRunner.Run("kill", ["-TERM", server.Id.ToString()], TimeSpan.FromSeconds(10)).ExitCode);
            Thread.Sleep(300);
            Assert.Throws<ServerDrainingException>(() => trainer.Step(new[] { 5, 6 }));
            trainer.Dispose(); // the last session closes: the server exits long before its 20 s grace
            Assert.True(server.WaitForExit(10_000), "the server did not exit after its last session closed");
            Assert.Equal(0, server.ExitCode);
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
        }
        Assert.Contains("draining", await log);
    }
}
