using RlhfGym.Experiments.Compare;

namespace RlhfGym.Cli.Tests;

/// <summary>compare's 95% intervals over seeds use Student's t at n − 1 degrees of freedom for every n, not a table that
/// stops at 9 and then falls back to the normal 1.96.</summary>
public class ConfidenceIntervalTests
{
    [Theory]
    [InlineData(1, 12.706)]
    [InlineData(2, 4.303)]
    [InlineData(9, 2.262)]
    [InlineData(10, 2.228)]
    [InlineData(30, 2.042)]
    [InlineData(120, 1.980)]
    public void The_t_quantile_matches_published_tables(int df, double expected) =>
        Assert.Equal(expected, CompareRunner.TQuantile975(df), 3);

    [Fact]
    public void Eleven_seeds_use_t_at_ten_degrees_of_freedom()
    {
        double[] values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        var (mean, half) = CompareRunner.MeanCi95(values);
        double sd = Math.Sqrt(values.Sum(v => (v - 6) * (v - 6)) / 10);
        Assert.Equal(6, mean, 12);
        Assert.Equal(2.228 * sd / Math.Sqrt(11), half, 3);
        Assert.True(half > 1.96 * sd / Math.Sqrt(11) + 0.1, "the normal quantile would give a narrower interval");
    }

    [Fact]
    public void One_seed_has_no_interval_and_zero_degrees_of_freedom_is_an_error()
    {
        Assert.True(double.IsNaN(CompareRunner.MeanCi95([0.5]).HalfWidth));
        Assert.Throws<ArgumentOutOfRangeException>(() => CompareRunner.TQuantile975(0));
    }
}
