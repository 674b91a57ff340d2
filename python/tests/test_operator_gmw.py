"""Gaussian mean width of operators against MATH.md section 5.

Linear maps: the Monte-Carlo value of 2 E||W^T g|| lies inside the two-sided
bound 2 sqrt(2/pi) ||sigma||_2 <= w(W) <= 2 ||W||_F and agrees with a NumPy
Monte-Carlo of the same expectation within a few standard errors.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import relusv


@pytest.mark.parametrize("shape", [(5, 8), (20, 3), (1, 6)])
def test_linear_width_inside_two_sided_bound(shape):
    W = np.random.default_rng(0).normal(size=shape)
    r = relusv.operator_gmw(W, samples=2000, seed=1)
    fro = np.linalg.norm(W)
    assert not r.relu
    assert r.lower == pytest.approx(2 * math.sqrt(2 / math.pi) * fro, rel=1e-12)
    assert r.upper == pytest.approx(2 * fro, rel=1e-12)
    assert r.lower - 4 * r.std_error <= r.estimate <= r.upper + 4 * r.std_error
    assert r.norm == pytest.approx(np.linalg.svd(W, compute_uv=False)[0], rel=1e-12)


def test_linear_width_matches_numpy_monte_carlo():
    W = np.random.default_rng(2).normal(size=(6, 4))
    r = relusv.operator_gmw(W, samples=4000, seed=3)
    g = np.random.default_rng(4).normal(size=(200_000, 6))
    reference = 2 * np.linalg.norm(g @ W, axis=1).mean()
    assert abs(r.estimate - reference) < 4 * r.std_error + 0.01


def test_rank_one_closed_form():
    """w(a b^T) = 2 ||b|| E|<a, g>| = 2 ||a|| ||b|| sqrt(2/pi) (the lower bound is attained)."""
    a, b = np.array([1.0, 2.0, -2.0]), np.array([0.5, 0.5])
    r = relusv.operator_gmw(np.outer(a, b), samples=20000, seed=5)
    exact = 2 * np.linalg.norm(a) * np.linalg.norm(b) * math.sqrt(2 / math.pi)
    assert abs(r.estimate - exact) < 4 * r.std_error
    assert r.lower == pytest.approx(exact, rel=1e-12)


def test_relu_layer_over_data_equals_set_width():
    rng = np.random.default_rng(6)
    W, b, X = rng.normal(size=(7, 5)), rng.normal(size=7), rng.normal(size=(300, 5))
    r = relusv.operator_gmw(W, b, X, samples=200, seed=7)
    assert r.relu and r.points == 300 and r.lower is None
    Y = np.maximum(X @ W.T + b, 0)
    assert r.estimate == pytest.approx(relusv.gmw(Y, samples=200, seed=7, trim=0.0), rel=1e-12)
    assert r.norm == pytest.approx(np.linalg.norm(Y, axis=1).max(), rel=1e-12)
    assert r.estimate <= r.upper
    assert r.upper == pytest.approx(2 * np.linalg.norm(W) * np.linalg.norm(X, axis=1).max(), rel=1e-12)


def test_relu_layer_over_the_sphere_below_linear_width():
    """phi = ReLU o W is 1-Lipschitz after W, so w(phi(S)) <= w(W) (Sudakov-Fernique)."""
    W = np.random.default_rng(8).normal(size=(6, 6))
    r = relusv.operator_gmw(W, relu=True, sphere_points=2000, samples=500, seed=9)
    lin = relusv.operator_gmw(W, samples=500, seed=9)
    assert r.points == 2000 and r.relu
    assert r.estimate <= lin.estimate + 4 * lin.std_error
    assert r.norm <= np.linalg.svd(W, compute_uv=False)[0] * (1 + 1e-12)
    # homogeneous: w(phi) <= 2 ||phi|| c_m, with ||phi|| >= the sample maximum
    assert r.estimate <= 2 * r.norm * relusv.gaussian_to_spherical_factor(6) * 1.05


def test_determinism_and_seed():
    W = np.random.default_rng(10).normal(size=(4, 4))
    assert relusv.operator_gmw(W, seed=1).estimate == relusv.operator_gmw(W, seed=1).estimate
    assert relusv.operator_gmw(W, seed=1).estimate != relusv.operator_gmw(W, seed=2).estimate


def test_bad_input():
    W = np.ones((3, 4))
    with pytest.raises(ValueError, match="b has length"):
        relusv.operator_gmw(W, np.zeros(2))
    with pytest.raises(ValueError, match="columns"):
        relusv.operator_gmw(W, X=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="ReLU layer"):
        relusv.operator_gmw(W, np.zeros(3), relu=False)
    with pytest.raises(ValueError, match="samples"):
        relusv.operator_gmw(W, samples=0)
