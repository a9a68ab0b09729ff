using RlhfGym.Agents.Algorithms;
using RlhfGym.Agents.Training;

namespace RlhfGym.Agents.Tests;

/// <summary>What a resumed run reads back from its directory: damaged files are named, a torn last metrics line is not
/// an obstacle.</summary>
public class RunFilesTests
{
    [Fact]
    public void A_resume_drops_a_metrics_line_torn_by_a_kill_and_names_a_corrupt_one_elsewhere()
    {
        using var dir = new TempDir();
        string metrics = Path.Combine(dir.Path, MetricsLog.FileName);
        File.WriteAllText(metrics, "{\"iteration\":1,\"kl\":0.1}\n{\"iteration\":2,\"kl\":0.2}\n{\"iteration\":3,\"k");
        _ = new MetricsLog(dir.Path, keepUpToIteration: 2);
        Assert.Equal([1, 2], MetricsLog.Read(dir.Path).Select(l => (int)l["iteration"]!).ToArray());

        File.WriteAllText(metrics, "{\"iteration\":1,\"kl\":0.1}\n{\"iteration\":2,\n{\"iteration\":3,\"kl\":0.3}\n");
        var e = Assert.Throws<InvalidDataException>(() => new MetricsLog(dir.Path, keepUpToIteration: 3));
        Assert.Contains($"{metrics}:2", e.Message);
        Assert.Contains($"{metrics}:2", Assert.Throws<InvalidDataException>(() => MetricsLog.Read(dir.Path)).Message);
    }

    [Fact]
    public void An_algorithm_state_file_without_a_usable_step_is_named()
    {
        using var dir = new TempDir();
        string path = dir.File("ppo.json");
        File.WriteAllText(path, "{\"steps\":3}");
        var e = Assert.Throws<InvalidDataException>(() => AlgorithmState.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("field 'step' must be an integer >= 0, got nothing", e.Message);
        File.WriteAllText(path, "{\"step\":-1}");
        Assert.Contains("got -1", Assert.Throws<InvalidDataException>(() => AlgorithmState.Read(path)).Message);
        File.WriteAllText(path, "{\"step\":4}");
        Assert.Equal(4, AlgorithmState.Read(path).Step);
    }
}
