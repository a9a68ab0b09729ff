namespace RlhfGym.Env.Normalization;

/// <summary>
/// One-feature robust linear regression with scikit-learn's HuberRegressor objective (joint scale estimate, L2 on the
/// slope): minimise over slope w, intercept c and scale s &gt; 0
///   Σ_i [ s + H((y_i − x_i·w − c)/s)·s ] + α·w²,   H(z) = z² if |z| &lt; ε else 2ε|z| − ε².
/// The objective is jointly convex in (w, c, s) for s &gt; 0, so damped Newton steps with a backtracking line search
/// reach its minimum; the result is the minimiser scikit-learn's L-BFGS-B converges to.
/// </summary>
public static class HuberRegression
{
    public sealed record Fit(double Slope, double Intercept, double Scale, double Objective, int Iterations, double GradientNorm);

    public static Fit Solve(IReadOnlyList<double> x, IReadOnlyList<double> y, double epsilon = 1.35, double alpha = 1e-4)
    {
        if (x.Count != y.Count) throw new ArgumentException($"x has {x.Count} values but y has {y.Count}");
        if (x.Count < 2) throw new ArgumentException($"need at least 2 points to fit a line, got {x.Count}");
        if (!(epsilon > 1)) throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "epsilon must be > 1");
        if (x.Concat(y).Any(v => !double.IsFinite(v))) throw new ArgumentException("x and y must be finite");

        // Start from least squares, with the scale at the residuals' spread.
        double mx = x.Average(), my = y.Average(), sxx = 0, sxy = 0;
        for (int i = 0; i < x.Count; i++) { sxx += (x[i] - mx) * (x[i] - mx); sxy += (x[i] - mx) * (y[i] - my); }
        double w = sxx > 0 ? sxy / (sxx + alpha) : 0, c = my - w * mx;
        double s = Math.Max(1e-3, Math.Sqrt(Enumerable.Range(0, x.Count).Average(i => Sq(y[i] - x[i] * w - c))));

        var p = new[] { w, c, s };
        var g = new double[3];
        var h = new double[3, 3];
        double f = Evaluate(x, y, p, epsilon, alpha, g, h);
        int iter;
        for (iter = 0; iter < 500; iter++)
        {
            if (Norm(g) < 1e-11) break;
            var step = NewtonStep(h, g);
            if (Dot(step, g) >= 0) step = [-g[0], -g[1], -g[2]]; // not a descent direction: fall back to the gradient
            double t = 1;
            var trial = new double[3];
            double ft = double.PositiveInfinity;
            for (int k = 0; k < 60; k++, t *= 0.5)
            {
                for (int j = 0; j < 3; j++) trial[j] = p[j] + t * step[j];
                if (trial[2] <= 0) continue;
                ft = Evaluate(x, y, trial, epsilon, alpha, null, null);
                if (ft <= f + 1e-4 * t * Dot(step, g)) break;
            }
            if (!(ft < f) && t < 1e-15) break; // no further decrease possible at double precision
            Array.Copy(trial, p, 3);
            f = Evaluate(x, y, p, epsilon, alpha, g, h);
        }
        return new Fit(p[0], p[1], p[2], f, iter, Norm(g));
    }

    /// <summary>The objective at (w, c, s); fills its gradient and Hessian when given arrays.</summary>
    public static double Evaluate(IReadOnlyList<double> x, IReadOnlyList<double> y, double[] p, double epsilon, double alpha, double[]? g, double[,]? h)
    {
        double w = p[0], c = p[1], s = p[2], f = alpha * w * w;
        if (g is not null) { g[0] = 2 * alpha * w; g[1] = 0; g[2] = 0; }
        if (h is not null) { Array.Clear(h); h[0, 0] = 2 * alpha; }
        for (int i = 0; i < x.Count; i++)
        {
            double r = y[i] - x[i] * w - c;
            if (Math.Abs(r) < epsilon * s)
            {
                f += s + r * r / s;
                if (g is not null) { g[0] += -2 * r * x[i] / s; g[1] += -2 * r / s; g[2] += 1 - r * r / (s * s); }
                if (h is not null)
                {
                    double[] d = [x[i], 1, r / s]; // ∂r/∂w = −x, ∂r/∂c = −1; the quadratic branch is (r² + s²)/s
                    h[0, 0] += 2 * d[0] * d[0] / s; h[0, 1] += 2 * d[0] * d[1] / s; h[1, 1] += 2 / s;
                    h[0, 2] += 2 * r * x[i] / (s * s); h[1, 2] += 2 * r / (s * s); h[2, 2] += 2 * r * r / (s * s * s);
                }
            }
            else
            {
                f += s + 2 * epsilon * Math.Abs(r) - epsilon * epsilon * s;
                if (g is not null) { g[0] += -2 * epsilon * Math.Sign(r) * x[i]; g[1] += -2 * epsilon * Math.Sign(r); g[2] += 1 - epsilon * epsilon; }
            }
        }
        if (h is not null) { h[1, 0] = h[0, 1]; h[2, 0] = h[0, 2]; h[2, 1] = h[1, 2]; }
        return f;
    }

    // Solve (H + λI)·step = −g with the smallest damping λ that keeps H + λI positive definite.
    private static double[] NewtonStep(double[,] h, double[] g)
    {
        for (double lambda = 0; lambda < 1e12; lambda = lambda == 0 ? 1e-10 : lambda * 10)
        {
            var a = (double[,])h.Clone();
            for (int i = 0; i < 3; i++) a[i, i] += lambda;
            if (TryCholeskySolve(a, g, out var step)) return step;
        }
        return [-g[0], -g[1], -g[2]];
    }

    private static bool TryCholeskySolve(double[,] a, double[] g, out double[] x)
    {
        var l = new double[3, 3];
        x = new double[3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = a[i, j];
                for (int k = 0; k < j; k++) sum -= l[i, k] * l[j, k];
                if (i == j)
                {
                    if (sum <= 1e-300) return false;
                    l[i, i] = Math.Sqrt(sum);
                }
                else l[i, j] = sum / l[j, j];
            }
        var z = new double[3];
        for (int i = 0; i < 3; i++)
        {
            double sum = -g[i];
            for (int k = 0; k < i; k++) sum -= l[i, k] * z[k];
            z[i] = sum / l[i, i];
        }
        for (int i = 2; i >= 0; i--)
        {
            double sum = z[i];
            for (int k = i + 1; k < 3; k++) sum -= l[k, i] * x[k];
            x[i] = sum / l[i, i];
        }
        return true;
    }

    private static double Sq(double v) => v * v;
    private static double Dot(double[] a, double[] b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    private static double Norm(double[] a) => Math.Sqrt(Dot(a, a));
}
