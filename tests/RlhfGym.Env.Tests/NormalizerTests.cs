using System.Text.Json.Nodes;
using RlhfGym.Env.Normalization;

namespace RlhfGym.Env.Tests;

public class NormalizerTests
{
    public static TheoryData<string> SklearnCases => new() { "location_with_outliers", "gaussian_with_outliers", "heavy_tails" };

    [Theory]
    [MemberData(nameof(SklearnCases))]
    public void Huber_fit_matches_scikit_learn_to_1e_4(string name)
    {
        // Fixtures/huber_sklearn.json comes from scikit-learn's HuberRegressor (Fixtures/make_huber_reference.py).
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "huber_sklearn.json")))!;
        var c = root["cases"]!.AsArray().Single(n => (string?)n!["name"] == name)!;
        var x = c["x"]!.AsArray().Select(v => (double)v!).ToList();
        var y = c["y"]!.AsArray().Select(v => (double)v!).ToList();
        var fit = HuberRegression.Solve(x, y);
        Assert.True(Math.Abs(fit.Slope - (double)c["slope"]!) < 1e-4, $"slope {fit.Slope} vs {(double)c["slope"]!}");
        Assert.True(Math.Abs(fit.Intercept - (double)c["intercept"]!) < 1e-4, $"intercept {fit.Intercept} vs {(double)c["intercept"]!}");
        Assert.True(Math.Abs(fit.Scale - (double)c["scale"]!) < 1e-4, $"scale {fit.Scale} vs {(double)c["scale"]!}");
    }

    [Fact]
    public void Huber_fit_satisfies_the_optimality_conditions_and_beats_nearby_points()
    {
        var rng = new Random(5);
        var x = Enumerable.Range(0, 40).Select(_ => rng.NextDouble() * 4 - 3).ToList();
        var y = x.Select((v, i) => 0.8 * v + 0.5 + (rng.NextDouble() - 0.5) * 0.1 + (i % 9 == 0 ? 4.0 : 0.0)).ToList();
        var fit = HuberRegression.Solve(x, y);
        var g = new double[3];
        double best = HuberRegression.Evaluate(x, y, [fit.Slope, fit.Intercept, fit.Scale], 1.35, 1e-4, g, null);
        Assert.True(Math.Sqrt(g.Sum(v => v * v)) < 1e-6, $"gradient norm {Math.Sqrt(g.Sum(v => v * v))}");
        for (int trial = 0; trial < 200; trial++)
        {
            double[] p = [fit.Slope + (rng.NextDouble() - 0.5) * 0.01, fit.Intercept + (rng.NextDouble() - 0.5) * 0.01, fit.Scale * (1 + (rng.NextDouble() - 0.5) * 0.01)];
            Assert.True(HuberRegression.Evaluate(x, y, p, 1.35, 1e-4, null, null) >= best - 1e-12);
        }
        Assert.InRange(fit.Slope, 0.75, 0.85); // the outliers (every 9th point) do not drag the line
    }

    /// <summary>Responses whose k-th of K segment rewards ~ N(μ(k/K), σ(k/K)) with planted lines.</summary>
    private static List<IReadOnlyList<double>> Planted(double aMu, double cMu, double aSigma, double cSigma, int seed)
    {
        var rng = new Random(seed);
        var data = new List<IReadOnlyList<double>>();
        for (int i = 0; i < 20000; i++)
        {
            int count = rng.Next(1, 9);
            data.Add(Enumerable.Range(1, count).Select(k =>
            {
                double p = k / (double)count;
                double gauss = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
                return aMu * Math.Log(p) + cMu + (aSigma * Math.Log(p) + cSigma) * gauss;
            }).ToList());
        }
        return data;
    }

    [Fact]
    public void Location_fit_recovers_planted_coefficients()
    {
        var report = NormalizerFitter.Fit(NormalizerKind.Location, Planted(0.7668, 0.4705, 0.2569, 2.8339, 1));
        var n = report.Normalizer;
        Assert.InRange(n.Mean.Slope, 0.7668 - 0.1, 0.7668 + 0.1);
        Assert.InRange(n.Mean.Intercept, 0.4705 - 0.1, 0.4705 + 0.1);
        Assert.InRange(n.Std.Slope, 0.2569 - 0.1, 0.2569 + 0.1);
        Assert.InRange(n.Std.Intercept, 2.8339 - 0.1, 2.8339 + 0.1);
        Assert.Equal(NormalizerKind.Location, n.Kind);
        Assert.True(report.Buckets > 10);
    }

    [Fact]
    public void Sigma_is_clamped_and_the_clamping_is_reported()
    {
        // σ(p) = 0.5 ln p + 1 reaches 0 at p = e^-2 ≈ 0.135: early segments of long responses get clamped.
        var report = NormalizerFitter.Fit(NormalizerKind.Location, Planted(0.0, 0.0, 0.5, 1.0, 2).Select(r => (IReadOnlyList<double>)r.Select(Math.Abs).ToList()).ToList());
        var n = report.Normalizer;
        Assert.True(n.StdAt(0.01) >= n.SigmaFloor);
        Assert.Equal(n.SigmaFloor, n.StdAt(1e-6));
        Assert.True(report.ClampedBelowP > 0);
        Assert.True(double.IsFinite(n.Normalize(1.0, 1, 1000)));
    }

    [Fact]
    public void Global_last_and_none()
    {
        List<IReadOnlyList<double>> data = [[1.0, 2.0, 3.0], [5.0]];
        var global = NormalizerFitter.Fit(NormalizerKind.Global, data).Normalizer;
        Assert.Equal(2.75, global.MeanAt(0.3), 12);
        Assert.Equal(Math.Sqrt((1.75 * 1.75 + 0.75 * 0.75 + 0.25 * 0.25 + 2.25 * 2.25) / 4), global.StdAt(0.9), 12);
        var last = NormalizerFitter.Fit(NormalizerKind.Last, data).Normalizer;
        Assert.Equal(4.0, last.MeanAt(0.5), 12);
        Assert.Equal(1.0, last.StdAt(0.5), 12);
        var none = NormalizerFitter.Fit(NormalizerKind.None, data).Normalizer;
        Assert.Equal(3.5, none.Normalize(3.5, 2, 3));
        // "none" is μ 0, σ 1 whatever the spread: a σ floor from rewards with std > 10 must not rescale it.
        var wide = NormalizerFitter.Fit(NormalizerKind.None, [[0.0, 100.0], [-50.0]]).Normalizer;
        Assert.Equal(37.0, wide.Normalize(37.0, 1, 2));
    }

    [Fact]
    public void Bad_inputs_are_clear_errors()
    {
        Assert.Contains("no responses", Assert.Throws<ArgumentException>(() => NormalizerFitter.Fit(NormalizerKind.Location, [])).Message);
        Assert.Contains("response 1 has an empty list", Assert.Throws<ArgumentException>(() => NormalizerFitter.Fit(NormalizerKind.Global, [[1.0], []])).Message);
        Assert.Contains("not finite", Assert.Throws<ArgumentException>(() => NormalizerFitter.Fit(NormalizerKind.Global, [[1.0, double.NaN]])).Message);
        Assert.Contains("nothing to regress", Assert.Throws<ArgumentException>(() => NormalizerFitter.Fit(NormalizerKind.Location, [[1.0], [2.0]])).Message);
    }

    [Fact]
    public void Json_round_trip_and_foreign_files()
    {
        using var dir = new TempDir();
        var n = NormalizerFitter.Fit(NormalizerKind.Location, Planted(0.5, 0.1, 0.2, 1.5, 3)).Normalizer;
        string path = dir.File("n.json");
        n.Save(path);
        Assert.Equal(n, RewardNormalizer.Load(path));
        File.WriteAllText(path, """{"version":1,"kind":"median","mean":{"slope":0,"intercept":0},"std":{"slope":0,"intercept":1},"sigma_floor":0.1}""");
        Assert.Contains("'kind'", Assert.Throws<InvalidDataException>(() => RewardNormalizer.Load(path)).Message);
        File.WriteAllText(path, """{"version":1,"kind":"location","mean":{"slope":0},"std":{"slope":0,"intercept":1},"sigma_floor":0.1}""");
        Assert.Contains("intercept", Assert.Throws<InvalidDataException>(() => RewardNormalizer.Load(path)).Message);
    }
}
