namespace RlhfGym.Cli.Tests;

/// <summary>When `serve` shortens libgomp's spin, and when it must leave it alone.</summary>
public class ServerOpenMpSpinTests
{
    private static (ServerOpenMpSpin.Outcome Outcome, Dictionary<string, string> Set) Decide(bool linux, bool loaded, params (string Name, string Value)[] env)
    {
        var vars = env.ToDictionary(e => e.Name, e => e.Value);
        var set = new Dictionary<string, string>();
        var outcome = ServerOpenMpSpin.Apply(linux, name => vars.GetValueOrDefault(name), loaded, (name, value) => set[name] = value);
        return (outcome, set);
    }

    [Fact]
    public void Sets_a_short_spin_before_libgomp_loads()
    {
        var (outcome, set) = Decide(linux: true, loaded: false);
        Assert.Equal(ServerOpenMpSpin.Outcome.Set, outcome);
        Assert.Equal(ServerOpenMpSpin.ServerValue, set[ServerOpenMpSpin.Variable]);
    }

    [Theory]
    [InlineData("GOMP_SPINCOUNT", "100000")]
    [InlineData("OMP_WAIT_POLICY", "PASSIVE")]
    public void Keeps_the_users_own_openmp_wait_setting(string name, string value)
    {
        var (outcome, set) = Decide(linux: true, loaded: false, (name, value));
        Assert.Equal(ServerOpenMpSpin.Outcome.UserSetting, outcome);
        Assert.Empty(set);
    }

    [Fact]
    public void Reports_too_late_once_libgomp_is_loaded_and_changes_nothing()
    {
        var (outcome, set) = Decide(linux: true, loaded: true);
        Assert.Equal(ServerOpenMpSpin.Outcome.TooLate, outcome);
        Assert.Empty(set);
    }

    [Fact]
    public void Does_nothing_off_linux()
    {
        var (outcome, set) = Decide(linux: false, loaded: false);
        Assert.Equal(ServerOpenMpSpin.Outcome.NotLinux, outcome);
        Assert.Empty(set);
    }
}
