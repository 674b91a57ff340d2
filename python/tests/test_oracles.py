"""The Gaussian mean width against the oracles of MATH.md section 4.

Statistical checks use the plain mean (trim=0, unbiased) and accept
|estimate - exact| < 4 standard errors as reported by relusv (a false alarm
has probability below 1e-4 per check; seeds are fixed, so the tests are
deterministic). Identities that hold direction by direction (translation,
scaling, convex hulls, the LP, Lemma 13 per sample) are checked per sample
with relative tolerances at the level of floating-point rounding.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import relusv
from conftest import c_n, closed_form_widths, cube_vertices, cube_width, relusv_directions, segment_width
from scipy.optimize import linprog
from scipy.stats import ortho_group

Z = 4.0  # standard errors allowed between a Monte-Carlo mean and its exact value
MANY = 20_000  # samples for statistical checks


def details(x, samples=MANY, seed=1, **kw):
    return relusv.gmw(x, samples=samples, seed=seed, trim=0.0, return_details=True, **kw)


# ----------------------------------------------------------------- exact sets

@pytest.mark.parametrize("n", [1, 3, 16])
def test_segment(rng, n):
    a = rng.normal(size=n) * 2.5
    r = details(np.stack([-a, a]))
    assert abs(r.mean - segment_width(a)) < Z * r.mean_std_error
    assert r.estimate == r.mean  # trim = 0: the estimate is the plain mean


@pytest.mark.parametrize("n", [2, 5, 8])
def test_cube_vertices(n):
    r = details(cube_vertices(n), seed=n)
    assert abs(r.mean - cube_width(n)) < Z * r.mean_std_error


def test_single_point_has_width_zero(rng):
    x = rng.normal(size=(1, 7))
    r = relusv.gmw(x, return_details=True)
    assert r.estimate == 0.0 and r.mean == 0.0 and np.all(r.sample_widths == 0.0)
    assert relusv.gmw(np.repeat(x, 50, axis=0)) == 0.0  # one point repeated


def test_circle_polygon_spherical_widths_are_bracketed():
    # N equally spaced points on the unit circle: for every unit direction
    # the width lies in [2 cos(pi / N), 2] (deterministic, per sample).
    n_points = 64
    t = 2 * np.pi * np.arange(n_points) / n_points
    x = np.stack([np.cos(t), np.sin(t)], axis=1)
    r = relusv.gmw(x, samples=2000, spherical=True, return_details=True)
    assert np.all(r.sample_widths <= 2 + 1e-12)
    assert np.all(r.sample_widths >= 2 * math.cos(math.pi / n_points) - 1e-12)


@pytest.mark.parametrize("n", [3, 10])
def test_dense_sphere_sample_tends_to_2cn(rng, n):
    # 20,000 random points on S^{n-1}: in 3 dimensions the points are dense, and
    # per direction the width is at most 2 ||g||; in 10 dimensions the sample
    # is not dense, so only the upper bound and monotone growth are exact.
    sphere = rng.normal(size=(20_000, n))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    r = details(sphere, samples=5000)
    g = relusv_directions(n, 5000, seed=1)
    norms = np.linalg.norm(g, axis=1)
    assert np.all(r.sample_widths <= 2 * norms * (1 + 1e-12))
    if n == 3:
        assert np.all(r.sample_widths >= 2 * norms * 0.99)
        assert abs(r.mean - 2 * c_n(n)) < Z * r.mean_std_error + 0.01 * 2 * c_n(n)
    else:
        smaller = details(sphere[:2000], samples=5000)
        assert np.all(smaller.sample_widths <= r.sample_widths)
        assert r.mean < 2 * c_n(n)


# ------------------------------------------------------------------ invariances

def test_translation_invariance(rng):
    x = rng.normal(size=(300, 6))
    t = rng.normal(size=6) * 50
    a, b = details(x, samples=500), details(x + t, samples=500)
    np.testing.assert_allclose(b.sample_widths, a.sample_widths, rtol=1e-10)


@pytest.mark.parametrize("scale", [0.0, 0.25, 3.7, 1e6])
def test_scaling(rng, scale):
    x = rng.normal(size=(200, 5))
    a, b = details(x, samples=300), details(scale * x, samples=300)
    np.testing.assert_allclose(b.sample_widths, scale * a.sample_widths, rtol=1e-12, atol=0)


def test_rotation_invariance_in_expectation(rng):
    x = rng.normal(size=(200, 6)) * np.array([5, 3, 2, 1, 0.5, 0.1])
    q = ortho_group.rvs(6, random_state=7)
    a, b = details(x, seed=2), details(x @ q.T, seed=3)
    assert abs(a.mean - b.mean) < Z * math.hypot(a.mean_std_error, b.mean_std_error)


def test_rotation_per_direction(rng):
    # <g, Q x> = <Q^T g, x>: rotating the set is rotating relusv's directions.
    x = rng.normal(size=(50, 4))
    q = ortho_group.rvs(4, random_state=3)
    g = relusv_directions(4, 200, seed=5)
    r = relusv.gmw(x @ q.T, samples=200, seed=5, return_details=True)
    np.testing.assert_allclose(r.sample_widths, closed_form_widths(g @ q, x), rtol=1e-12)


def test_convex_combinations_do_not_change_the_width(rng):
    x = rng.normal(size=(40, 5))
    weights = rng.dirichlet(np.ones(40), size=500)  # 500 points of conv(K)
    a = details(x, samples=400)
    b = details(np.vstack([weights @ x, x]), samples=400)
    np.testing.assert_allclose(b.sample_widths, a.sample_widths, rtol=1e-12)
    # conv(K) minus some vertices: a subset, so never wider, direction by direction
    c = details(np.vstack([weights @ x, x[:20]]), samples=400)
    assert np.all(c.sample_widths <= a.sample_widths * (1 + 1e-12))


def test_subset_monotonicity(rng):
    x = rng.normal(size=(500, 8))
    small, large = details(x[:100], samples=300), details(x, samples=300)
    assert np.all(small.sample_widths <= large.sample_widths * (1 + 1e-12))


# ------------------------------------------------------------------- Lemma 13

@pytest.mark.parametrize("n", [1, 2, 3, 10, 299, 300, 301, 302, 784, 10**6, 10**12])
def test_gaussian_to_spherical_factor(n):
    assert relusv.gaussian_to_spherical_factor(n) == pytest.approx(c_n(n), rel=1e-14)


def test_factor_closed_forms_and_monte_carlo(rng):
    assert relusv.gaussian_to_spherical_factor(1) == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15)
    assert relusv.gaussian_to_spherical_factor(2) == pytest.approx(math.sqrt(math.pi / 2), rel=1e-15)
    assert relusv.gaussian_to_spherical_factor(10**8) == pytest.approx(math.sqrt(10**8 - 0.5), rel=1e-15)
    norms = np.linalg.norm(rng.normal(size=(200_000, 7)), axis=1)
    se = norms.std(ddof=1) / math.sqrt(norms.size)
    assert abs(relusv.gaussian_to_spherical_factor(7) - norms.mean()) < Z * se


def test_lemma13_per_sample(rng):
    # The spherical width of direction j is the Gaussian one divided by ||g_j||.
    x = rng.normal(size=(100, 5))
    g = relusv_directions(5, 300, seed=4)
    w = details(x, samples=300, seed=4)
    ws = details(x, samples=300, seed=4, spherical=True)
    np.testing.assert_allclose(ws.sample_widths * np.linalg.norm(g, axis=1), w.sample_widths, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 6])
def test_lemma13_in_expectation(n):
    x = cube_vertices(n)
    ws = details(x, seed=8, spherical=True)
    assert abs(relusv.gaussian_to_spherical_factor(n) * ws.mean - cube_width(n)) < \
        Z * relusv.gaussian_to_spherical_factor(n) * ws.mean_std_error


# ------------------------------------------------------- the paper's linear program

def lp_width(g: np.ndarray, x: np.ndarray) -> float:
    """sup_{u in conv(K) - conv(K)} <g, u> as the paper's LP.

    Variables: weights lam, mu in the simplex (u = lam @ x, v = mu @ x);
    maximise <g, u - v> = (x g) . lam - (x g) . mu.
    """
    n_points = x.shape[0]
    s = x @ g
    c = -np.concatenate([s, -s])
    a_eq = np.zeros((2, 2 * n_points))
    a_eq[0, :n_points] = 1
    a_eq[1, n_points:] = 1
    res = linprog(c, A_eq=a_eq, b_eq=[1, 1], bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return -res.fun


@pytest.mark.parametrize("shape", [(5, 2), (12, 3), (30, 6)])
def test_linprog_equals_closed_form_for_any_direction(rng, shape):
    # Corollary 11 direction by direction: the LP over conv(K) - conv(K) has
    # the value max - min, for arbitrary g (not only relusv's).
    x = rng.normal(size=shape)
    for g in rng.normal(size=(20, shape[1])):
        assert lp_width(g, x) == pytest.approx(float(closed_form_widths(g[None], x)[0]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shape,dtype", [((5, 2), "float64"), ((12, 3), "float64"), ((30, 6), "float32")])
def test_sample_widths_equal_linprog_on_relusv_directions(rng, shape, dtype):
    # relusv's per-sample values against one linprog per sample, on the very
    # directions relusv drew (read back through the accumulator).
    samples, seed = 25, 11
    x = rng.normal(size=shape).astype(dtype)
    r = relusv.gmw(x, samples=samples, seed=seed, trim=0, return_details=True)
    g = relusv_directions(shape[1], samples, seed, dtype=dtype)
    lp = np.array([lp_width(gj, x.astype(np.float64)) for gj in g])
    rtol = 1e-9 if dtype == "float64" else 1e-5  # float32 products
    np.testing.assert_allclose(r.sample_widths, lp, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(r.sample_widths, closed_form_widths(g, x), rtol=rtol)


def test_directions_are_standard_normal():
    from scipy import stats

    g = relusv_directions(4, 50_000, seed=123).ravel()
    se = 1 / math.sqrt(g.size)
    assert abs(g.mean()) < Z * se
    assert abs(g.var() - 1) < Z * math.sqrt(2) * se
    assert abs(stats.skew(g)) < Z * math.sqrt(6) * se
    assert abs(stats.kurtosis(g)) < Z * math.sqrt(24) * se
    assert stats.kstest(g, "norm").pvalue > 1e-4
    # coordinates of one direction are uncorrelated
    c = np.corrcoef(relusv_directions(4, 50_000, seed=123).T)
    assert np.all(np.abs(c[np.triu_indices(4, 1)]) < Z / math.sqrt(50_000))


# ------------------------------------------------------------ seeds and precision

def test_same_seed_same_result_and_different_seeds_differ(rng):
    x = rng.normal(size=(300, 10))
    a = relusv.gmw(x, seed=9, return_details=True)
    b = relusv.gmw(x.copy(), seed=9, return_details=True)
    c = relusv.gmw(x, seed=10, return_details=True)
    assert a.estimate == b.estimate
    np.testing.assert_array_equal(a.sample_widths, b.sample_widths)
    assert a.estimate != c.estimate
    assert not np.any(a.sample_widths == c.sample_widths)
    assert relusv.gmw(x) == relusv.gmw(x, seed=0)  # None means the fixed seed 0


def test_directions_do_not_depend_on_samples_count(rng):
    # Direction j is a function of (seed, j): the first 50 of 200 samples are the 50 samples.
    x = rng.normal(size=(100, 7))
    a = relusv.gmw(x, samples=50, seed=3, return_details=True)
    b = relusv.gmw(x, samples=200, seed=3, return_details=True)
    np.testing.assert_array_equal(a.sample_widths, b.sample_widths[:50])


def test_float32_matches_float64(rng):
    x = rng.normal(size=(2000, 64))
    a = relusv.gmw(x, samples=200, return_details=True)
    b = relusv.gmw(x.astype(np.float32), samples=200, return_details=True)
    np.testing.assert_allclose(b.sample_widths, a.sample_widths, rtol=1e-4)
    assert b.estimate == pytest.approx(a.estimate, rel=1e-5)


def test_far_from_origin_float32(rng):
    # A set far from the origin: products are large, widths small. float32
    # loses digits (about eps * ||x|| / width) but must stay accurate to that level.
    x = rng.normal(size=(500, 8)) + 100.0
    a = relusv.gmw(x, samples=200)
    b = relusv.gmw(x.astype(np.float32), samples=200)
    assert b == pytest.approx(a, rel=1e-3)
