using RlhfGym.Env.Core;
using RlhfGym.PhraseWorld;
using RlhfGym.Tests;
using RlhfGym.Transport;
using RlhfGym.Transport.Client;

namespace RlhfGym.Cli.Tests;

/// <summary>
/// A step whose reply never comes (the server froze, here with SIGSTOP) may still run once the server goes on: the
/// client cannot know, so both official clients refuse to step again until a reset of every sub-env, instead of
/// stepping on from an episode a token behind the server's.
/// </summary>
public class UnansweredStepTests
{
    [Fact]
    public void After_a_step_times_out_the_csharp_and_python_clients_refuse_to_step_until_a_full_reset()
    {
        using var dir = new TempDir();
        var bundle = RandomBundle.Write(dir.File("bundle"), maxNewTokens: 12, seed: 5);
        string address = $"tcp://127.0.0.1:{LoopbackPort.Free()}";
        using var server = ServeProcess.Start(address, ["--env", bundle.Directory, "--device", "cpu"]);
        Assert.True(WaitReady(address), $"{address} not ready after a minute");

        using var env = new RemoteVectorEnv(address, numEnvs: 2, heartbeat: TimeSpan.Zero,
            connectTimeout: TimeSpan.FromSeconds(1), stepTimeout: TimeSpan.FromSeconds(1));
        env.Reset(seed: 1);
        env.Step([5, 6]);
        server.Pause();
        try { Assert.Equal("timeout", Assert.Throws<RemoteEnvException>(() => env.Step([5, 6])).Code); }
        finally { server.Resume(); } // the server then runs that step: its episodes are a token ahead of the client's
        var refused = Assert.Throws<RemoteEnvException>(() => env.Step([5, 6]));
        Assert.Equal("invalid_state", refused.Code);
        Assert.Contains("'step' got no reply", refused.Message);
        Assert.Contains("Reset", refused.Message);
        env.Reset(options: new ResetOptions { Mask = [true, false] }); // a partial reset is not enough
        Assert.Equal("invalid_state", Assert.Throws<RemoteEnvException>(() => env.Step([5, 6])).Code);
        env.Reset(seed: 2);
        env.Step([5, 6]);

        string client = RepositoryRoot.File("clients", "python");
        var run = ProcessRunner.Run("/usr/bin/python3", [Path.Combine(client, "tests", "check_unanswered.py"), address, server.ProcessId.ToString()],
            TimeSpan.FromMinutes(2), environment: new Dictionary<string, string> { ["PYTHONPATH"] = client });
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("unanswered checks passed", run.StdOut);
    }

    private static bool WaitReady(string address)
    {
        for (int i = 0; i < 600; i++)
        {
            if (EnvServerProbe.Health(address, TimeSpan.FromSeconds(5)).Ready) return true;
            Thread.Sleep(100);
        }
        return false;
    }
}
