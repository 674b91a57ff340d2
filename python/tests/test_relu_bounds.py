"""Certified ReLU singular-value bounds (MATH.md sections 2-3 and 9) against NumPy oracles.

Every bound is recomputed here in float64 from the factors relusv returns,
for float32 and float64 inputs and weights whose singular values fall to
1e-7; the rank of every approximant is at most k and the curve is monotone.
Tolerances: 1e-9 relative (plus 1e-15 of s_0 absolute) between relusv's
float64 value and NumPy's, whose sums run in another order.
"""
from __future__ import annotations

import numpy as np
import pytest
import relusv

FAST = dict(max_steps=40)


def group_errors(W, b, X, L, P=1):
    """Per point: the root-sum-square over each group of P consecutive rows, in float64."""
    W, X, L, b = (np.asarray(a, dtype=np.float64) for a in (W, X, L, b))
    e = np.maximum(X @ W.T + b, 0) - np.maximum(X @ L.T + b, 0)
    return np.sqrt((e * e).sum(axis=1).reshape(-1, P).sum(axis=1))


def conditioned_layer(n, smallest, seed, points=150):
    rng = np.random.default_rng(seed)
    Q1, _ = np.linalg.qr(rng.normal(size=(n, n)))
    Q2, _ = np.linalg.qr(rng.normal(size=(n, n)))
    W = (Q1 * np.logspace(0, np.log10(smallest), n)) @ Q2.T
    return W, 0.05 * rng.normal(size=n), rng.uniform(-1, 1, size=(points, n))


def check_certified(r, W, b, X, P=1):
    s0 = r.bound[0]
    for i, k in enumerate(r.ks):
        U, V = r.factors[i]
        L = U @ V
        assert U.shape[1] <= k and np.linalg.matrix_rank(L) <= k
        exact = group_errors(W, b, X, L, P).max()
        assert r.bound[i] == pytest.approx(exact, rel=1e-9, abs=1e-15 * s0), (k, r.source[i])
        assert (r.source[i] == "zero") == (r.bound[i] == 0)
    assert np.all(np.diff(r.bound) <= 0)
    assert np.all(r.bound <= r.truncation_bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smallest", [1.0, 1e-3, 1e-7])
def test_every_bound_is_the_float64_error_of_its_factors(dtype, smallest):
    W, b, X = conditioned_layer(24, smallest, seed=int(-np.log10(smallest)))
    W, b, X = (a.astype(dtype) for a in (W, b, X))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, **FAST)
    assert r.dtype == np.dtype(dtype).name
    check_certified(r, W, b, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("P", [1, 3])
def test_fits_in_the_row_space_of_few_rows_are_certified(dtype, P):
    """Points with at most half as many rows as inputs (12 rows, 40 inputs): the fits run in the points' row
    space and are lifted back (docs/engine.md, "Few rows"); every bound is still the float64 error of the
    returned factors on the original points, and the fits do win somewhere."""
    rng = np.random.default_rng(11 + P)
    W = rng.normal(size=(30, 40)) / np.sqrt(40)
    b = 0.1 * rng.normal(size=30)
    X = rng.normal(size=(12, 40))
    W, b, X = (a.astype(dtype) for a in (W, b, X))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, group_size=P, seed=0,
                                    max_steps=200)
    check_certified(r, W, b, X, P)
    assert {"fit", "refine"} & set(r.source), list(r.source)


def test_float32_ill_conditioned_tail_is_not_declared_zero():
    """A float32 W with singular values down to 1e-7 was formerly
    reported as exactly 0 from the numerical rank on; now each value is the
    float64 error of the returned factors, positive where it is."""
    W, b, X = (a.astype(np.float32) for a in conditioned_layer(40, 1e-7, seed=3))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, **FAST)
    check_certified(r, W, b, X)
    assert np.all(r.bound[30:] > 0) and "zero" not in r.source


@pytest.mark.parametrize("smallest", [1.0, 1e-3, 1e-7])
def test_float32_whole_curve_over_many_points_is_the_float64_error(smallest):
    """float32 over 3,000 points (more than a fit's 2,048: fits on a subset,
    certified over all), fits at every 8th k and their extensions: the
    families and extensions run in float64 on exact copies of the float32
    values and factors, fits are certified by recomputing in float64; every
    value is the float64 maximum error of the returned float32 factors."""
    W, b, X = (a.astype(np.float32) for a in conditioned_layer(64, smallest, seed=7, points=3000))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, max_steps=30, fit_stride=8)
    assert r.dtype == "float32" and r.steps.sum() > 0
    check_certified(r, W, b, X)


def test_zeros_at_the_rank_of_the_preactivations():
    """MATH.md 2: with N points s_k = 0 for every k >= rank(X W^T) = N; the
    data-aware candidates reach the rounding level there."""
    rng = np.random.default_rng(4)
    W = rng.normal(size=(30, 40)) / np.sqrt(40)
    b = 0.1 * rng.normal(size=30)
    X = np.abs(rng.normal(size=(12, 40)))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, **FAST)
    check_certified(r, W, b, X)
    assert r.bound[11] > 1e-6 * r.bound[0]
    assert np.all(r.bound[12:] < 1e-12 * r.bound[0])
    assert r.source[12] in {"rrr", "data-projection", "zero"}


def test_grouped_maxima_equal_a_hand_computation():
    """MATH.md 9: every P consecutive rows are one point; the bound is the
    largest root-sum-square over a group, recomputed from the factors."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(10, 8)) / np.sqrt(8)
    b = 0.1 * rng.normal(size=10)
    X = rng.uniform(-1, 1, size=(90, 8))
    P = 6
    r = relusv.relu_singular_values(W, b, X, group_size=P, return_factors=True, progress=False, **FAST)
    check_certified(r, W, b, X, P)
    assert r.source[0] == "exact"
    assert r.bound[0] == pytest.approx(group_errors(W, b, X, np.zeros_like(W), P).max(), rel=1e-12)
    one = relusv.relu_singular_values(W, b, X, group_size=1, progress=False, **FAST)
    default = relusv.relu_singular_values(W, b, X, progress=False, **FAST)
    np.testing.assert_array_equal(one.bound, default.bound)


def test_grouped_float32_is_certified():
    rng = np.random.default_rng(6)
    W, b, X = (a.astype(np.float32) for a in (rng.normal(size=(9, 7)) / 3, 0.1 * rng.normal(size=9),
                                               rng.uniform(0, 1, size=(64, 7))))
    r = relusv.relu_singular_values(W, b, X, group_size=4, return_factors=True, progress=False, **FAST)
    check_certified(r, W, b, X, 4)


@pytest.mark.parametrize("rows, group_size", [(10, 3), (7, 2)])
def test_rows_not_a_multiple_of_the_group_size_are_refused(rows, group_size):
    X = np.ones((rows, 4))
    with pytest.raises(ValueError, match="multiple of group_size"):
        relusv.relu_singular_values(np.eye(4), None, X, group_size=group_size)


def test_room_in_the_budget_raises_the_effort():
    """A curve far below the work budget gives its fits a higher cap (up to 4x
    the default max_steps per start, docs/engine.md "Budgets"); a cap set below
    the default stays the caller's; a generous time_budget raises it too."""
    rng = np.random.default_rng(7)
    W = rng.normal(size=(12, 12)) / np.sqrt(6)
    b = 0.1 * rng.normal(size=12)
    X = rng.uniform(-1, 1, size=(300, 12))
    default = relusv.relu_singular_values(W, b, X, progress=False)
    assert default.steps.max() <= 3 * 4 * 500  # at most three starts per k
    kept = relusv.relu_singular_values(W, b, X, progress=False, max_steps=499)
    assert kept.steps.max() <= 2 * 499
    assert default.steps.sum() > 1.2 * kept.steps.sum()
    base = relusv.relu_singular_values(W, b, X, progress=False, max_steps=60)
    assert base.steps.max() <= 2 * 60
    more = relusv.relu_singular_values(W, b, X, progress=False, max_steps=60, time_budget=600)
    assert more.steps.sum() > base.steps.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_truncation_bounds_equal_numpy_per_k(dtype):
    """The SVD family is evaluated at every k in one blocked pass (rank updates
    of row blocks, MATH.md 3); each t_k must equal the error of W_k computed on
    its own with NumPy in float64 (float32: W_k from the float32 SVD factors,
    so the reference is the returned factors of the svd source)."""
    rng = np.random.default_rng(11)
    m, n, N = 40, 30, 700
    W = rng.normal(0.0, np.sqrt(2.0 / n), size=(m, n))
    b = 0.1 * rng.normal(size=m)
    X = np.maximum(rng.normal(size=(N, n)) - 1.0, 0.0)
    W, b, X = (a.astype(dtype) for a in (W, b, X))
    r = relusv.relu_singular_values(W, b, X, progress=False, max_steps=0, return_factors=True)
    Wd = W.astype(np.float64)
    U, s, Vt = np.linalg.svd(Wd, full_matrices=False)
    for i, k in enumerate(r.ks):
        Wk = (U[:, :k] * s[:k]) @ Vt[:k]
        t = group_errors(W, b, X, Wk).max()
        tolerance = 1e-9 if dtype == np.float64 else 1e-4
        assert r.truncation_bound[i] == pytest.approx(t, rel=tolerance, abs=1e-12 * r.bound[0]), k
    check_certified(r, W, b, X)


def test_fit_extensions_are_certified_along_a_strided_curve():
    """Fits at every 8th k (and below 8 and at the last 8 below the rank); the
    k between them take the fits' extensions by singular pairs of W (one
    blocked pass); every value recomputed from its factors in float64."""
    rng = np.random.default_rng(12)
    m, n, N = 32, 32, 400
    W = rng.normal(0.0, np.sqrt(2.0 / n), size=(m, n))
    b = 0.1 * rng.normal(size=m)
    X = np.maximum(rng.normal(size=(N, n)) - 1.0, 0.0)
    r = relusv.relu_singular_values(W, b, X, progress=False, max_steps=60, fit_stride=8, return_factors=True)
    check_certified(r, W, b, X)
    fitted = set(range(1, 8)) | set(range(8, 32, 8)) | set(range(24, 32))
    assert r.fit_stride == 8 and set(np.flatnonzero(r.steps)) <= fitted


def test_tall_data_zeros_at_the_rank_of_the_data():
    """N >= 2n takes the data-aware candidates' singular vectors from the QR
    factor R of X (and of X W^T): with X of rank 10, the error vanishes (to
    rounding) from k = 10 on, as MATH.md 2 says."""
    rng = np.random.default_rng(13)
    W = rng.normal(size=(30, 40)) / np.sqrt(40)
    b = 0.1 * rng.normal(size=30)
    X = rng.normal(size=(200, 10)) @ rng.normal(size=(10, 40))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, **FAST)
    check_certified(r, W, b, X)
    assert r.bound[9] > 1e-6 * r.bound[0]
    assert np.all(r.bound[10:] < 1e-12 * r.bound[0])


def test_float32_rounding_level_certificate_in_blocks():
    """float32 with errors at the rounding level: most points are candidates
    of the float64 recomputation, done in blocks of float64 GEMMs; every
    value is still the float64 maximum error of the returned factors."""
    W, b, X = conditioned_layer(48, 1e-7, seed=14)
    X = np.vstack([X, -X, 0.5 * X])
    W, b, X = (a.astype(np.float32) for a in (W, b, X))
    r = relusv.relu_singular_values(W, b, X, return_factors=True, progress=False, max_steps=0)
    check_certified(r, W, b, X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted_rrr_is_certified_by_its_factors(dtype):
    """The weighted reduced-rank regression (Lawson reweighting of the points
    in the SVD of W X^T): without fits (max_steps=0) it wins at some k, is
    named ``weighted-rrr``, has rank <= k, and its bound is the float64 error
    of its returned factors (never worse than it claims)."""
    rng = np.random.default_rng(5)
    n, N = 20, 120
    W = rng.normal(0, np.sqrt(2 / n), size=(n, n))
    b = 0.1 * rng.normal(size=n)
    X = np.maximum(rng.normal(size=(N, n)) - 0.5, 0)
    W, b, X = (a.astype(dtype) for a in (W, b, X))
    r = relusv.relu_singular_values(W, b, X, max_steps=0, return_factors=True, progress=False)
    weighted = [i for i, s in enumerate(r.source) if s == "weighted-rrr"]
    assert weighted, list(r.source)
    check_certified(r, W, b, X)
    for i in weighted:
        U, V = r.factors[i]
        assert U.shape[1] <= r.ks[i]
        exact = group_errors(W, b, X, U @ V).max()
        assert r.bound[i] >= exact * (1 - 1e-12)
        # Below the plain candidates at that k: the truncation and the unweighted regression.
        assert r.bound[i] < r.truncation_bound[i]
