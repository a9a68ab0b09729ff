#!/usr/bin/env python3
"""Reference HuberRegressor fits for the normalizer tests.

Run with Debian's scikit-learn (apt-get install python3-sklearn):
    /usr/bin/python3 tests/RlhfGym.Env.Tests/Fixtures/make_huber_reference.py > tests/RlhfGym.Env.Tests/Fixtures/huber_sklearn.json
The C# HuberRegression must reproduce slope, intercept and scale to 1e-4.
"""
import json
import numpy as np
import sklearn
from sklearn.linear_model import HuberRegressor

cases = []

# A location-normalizer-like fit: bucket means against ln(p) with the paper's slope/intercept and two outliers.
p = np.array([0.1, 0.125, 0.143, 0.167, 0.2, 0.25, 0.333, 0.4, 0.5, 0.6, 0.667, 0.75, 0.8, 1.0])
x = np.log(p + 1e-10)
y = 0.7668 * x + 0.4705 + np.array([0.01, -0.02, 0.015, 0.0, 3.0, -0.01, 0.02, -0.015, 0.0, -2.5, 0.01, 0.0, 0.02, -0.01])
cases.append(("location_with_outliers", x, y))

# Gaussian noise with three large outliers.
rng = np.random.default_rng(0)
x = rng.normal(size=30)
y = 2.0 * x - 1.0 + rng.normal(scale=0.3, size=30)
y[[3, 7, 11]] += np.array([8, -6, 5])
cases.append(("gaussian_with_outliers", x, y))

# Every point off a line by a lot (most residuals in the linear branch).
x = np.linspace(-3, 0, 12)
y = np.array([5, -4, 3, -2, 6, -5, 1, 0, -3, 4, -1, 2], dtype=float) + 0.5 * x
cases.append(("heavy_tails", x, y))

out = {"sklearn": sklearn.__version__, "epsilon": 1.35, "alpha": 1e-4, "cases": []}
for name, x, y in cases:
    h = HuberRegressor(epsilon=1.35, alpha=1e-4, fit_intercept=True, max_iter=100000, tol=1e-14).fit(x.reshape(-1, 1), y)
    out["cases"].append({"name": name, "x": x.tolist(), "y": y.tolist(),
                         "slope": float(h.coef_[0]), "intercept": float(h.intercept_), "scale": float(h.scale_)})
print(json.dumps(out, indent=1))
