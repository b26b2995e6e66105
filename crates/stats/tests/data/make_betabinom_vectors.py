"""Reference vectors for learnloop_stats::{beta_binomial_cdf, beta_binomial_sf,
normal_cdf}: `python3 make_betabinom_vectors.py > betabinom_vectors.json`
(SciPy 1.17.1; deterministic)."""
import json
import numpy as np
import scipy
from scipy.stats import betabinom, norm

rng = np.random.default_rng(20261205)
cases = []
for i in range(60):
    n = int(rng.choice([5, 10, 30, 60, 100, 300]))
    a = float(round(rng.uniform(0.3, 200.0), 6))
    b = float(round(rng.uniform(0.3, 60.0), 6))
    k = int(rng.integers(0, n + 1))
    cases.append({"k": k, "n": n, "a": a, "b": b, "cdf": float(betabinom.cdf(k, n, a, b)), "sf": float(betabinom.sf(k, n, a, b))})
normal = [{"x": x, "cdf": float(norm.cdf(x))} for x in [-12.0, -8.5, -5.2, -3.1, -1.5, -0.2, 0.0, 0.7, 2.3, 4.4]]
print(json.dumps({"scipy": scipy.__version__, "betabinom": cases, "normal_cdf": normal}, indent=0))
