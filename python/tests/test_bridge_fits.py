"""Bridge fits between strided fits (MATH.md section 3; SpectrumSettings.bridgeShare).

Where the curve's fits run at every s-th k, the k between two fitted k across
which the bound falls steeply get a short minimax refinement instead of
repeating the fitted value before them (``previous-k``). Oracles: NumPy in
float64 (the exact error of the returned factors, the truncated SVD's error
t_k); tolerances 1e-9 relative plus 1e-15 of s_0.
"""
from __future__ import annotations

import numpy as np
import pytest
import relusv


def max_errors(W, b, X, L):
    """max_x ||ReLU(W x + b) - ReLU(L x + b)|| in float64."""
    W, X, L, b = (np.asarray(a, dtype=np.float64) for a in (W, X, L, b))
    e = np.maximum(X @ W.T + b, 0) - np.maximum(X @ L.T + b, 0)
    return float(np.sqrt((e * e).sum(axis=1)).max())


@pytest.fixture(scope="module")
def strided_curve():
    """A 40 x 40 He layer with bias over 300 Gaussian points, fits at every 4th k."""
    rng = np.random.default_rng(18)
    m = n = 40
    W = rng.normal(0.0, np.sqrt(2.0 / n), size=(m, n))
    b = 0.1 * rng.normal(size=m)
    X = rng.normal(size=(300, n))
    r = relusv.relu_singular_values(W, b, X, progress=False, max_steps=90, fit_stride=4, return_factors=True, seed=0)
    return W, b, X, r


def test_every_bound_is_certified_and_at_most_the_truncation(strided_curve):
    W, b, X, r = strided_curve
    U, s, Vt = np.linalg.svd(W)
    s0 = r.bound[0]
    for i, k in enumerate(r.ks):
        Uk, Vk = r.factors[i]
        L = np.zeros_like(W) if Uk is None or np.size(Uk) == 0 else np.asarray(Uk, float) @ np.asarray(Vk, float)
        assert np.linalg.matrix_rank(L) <= k
        assert r.bound[i] == pytest.approx(max_errors(W, b, X, L), rel=1e-9, abs=1e-15 * s0), (k, r.source[i])
        t_k = max_errors(W, b, X, (U[:, :k] * s[:k]) @ Vt[:k])
        assert r.bound[i] <= t_k * (1 + 1e-9) + 1e-15 * s0, k
    assert np.all(np.diff(r.bound) <= 0)


def test_bridged_k_are_strictly_below_the_fitted_value_before_them(strided_curve):
    """At the unfitted k (k >= 4, not a multiple of 4, below the last 8) a
    bridge fit's value (source fit or refine) is strictly below the value at
    the fitted k before it, where the staircase would have repeated it; the
    steep tail of this layer has such k."""
    W, b, X, r = strided_curve
    assert r.fit_stride == 4
    bridged = [k for k in range(5, 32) if k % 4 and r.source[k] in ("fit", "refine")]
    assert len(bridged) >= 2, list(zip(r.ks, r.source))
    for k in bridged:
        assert r.bound[k] < r.bound[k - k % 4], k
