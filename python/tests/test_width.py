"""The one-shot API: relusv.gmw, WidthEstimate, diameter, effective_dimension.

Summaries are checked against SciPy/NumPy computing the same statistic from
the returned per-sample widths; diameters against scipy.spatial.distance.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import relusv
from conftest import closed_form_widths, relusv_directions
from scipy import stats
from scipy.spatial.distance import pdist


def tukey_mclaughlin_se(values: np.ndarray, trim: float) -> float:
    """Standard error of the trimmed mean: winsorised s / ((1 - 2g/S) sqrt(S))."""
    s = values.size
    g = int(trim * s)
    w = np.asarray(stats.mstats.winsorize(values, limits=(g / s, g / s)))
    return w.std(ddof=1) / ((1 - 2 * g / s) * math.sqrt(s))


def test_returns_a_float_by_default(rng):
    w = relusv.gmw(rng.normal(size=(50, 3)))
    assert isinstance(w, float) and w > 0


@pytest.mark.parametrize("trim", [0.0, 0.1, 0.25, 0.49])
def test_summary_matches_scipy(rng, trim):
    x = rng.exponential(size=(80, 4))
    r = relusv.gmw(x, samples=137, seed=4, trim=trim, return_details=True)
    w = r.sample_widths
    assert w.shape == (137,) and w.dtype == np.float64
    assert r.estimate == pytest.approx(stats.trim_mean(w, trim), rel=1e-13)
    assert r.mean == pytest.approx(w.mean(), rel=1e-13)
    assert r.mean_std_error == pytest.approx(w.std(ddof=1) / math.sqrt(w.size), rel=1e-12)
    assert r.std_error == pytest.approx(tukey_mclaughlin_se(w, trim), rel=1e-12)
    assert (r.samples, r.points, r.trim, r.seed, r.spherical) == (137, 80, trim, 4, False)
    assert float(r) == r.estimate


def test_defaults_are_the_papers_estimator(rng):
    x = rng.normal(size=(60, 5))
    r = relusv.gmw(x, return_details=True)
    assert (r.samples, r.trim, r.seed) == (100, 0.1, 0)
    assert relusv.gmw(x) == pytest.approx(stats.trim_mean(r.sample_widths, 0.1), rel=1e-13)


def test_sample_widths_are_the_closed_form_on_relusv_directions(rng):
    x = rng.normal(size=(333, 6))
    g = relusv_directions(6, 40, seed=21)
    r = relusv.gmw(x, samples=40, seed=21, return_details=True)
    np.testing.assert_allclose(r.sample_widths, closed_form_widths(g, x), rtol=1e-13)


def test_trailing_dimensions_are_flattened(rng):
    x = rng.normal(size=(30, 2, 3, 2))
    assert relusv.gmw(x, seed=2) == relusv.gmw(x.reshape(30, 12), seed=2)


def test_one_sample(rng):
    r = relusv.gmw(rng.normal(size=(10, 2)), samples=1, trim=0.1, return_details=True)
    assert r.samples == 1 and r.estimate == r.sample_widths[0] and r.std_error == 0


def test_large_blocks_split_identically(rng):
    # More points than one GEMM block (2^20 / S rows): the blocked result equals
    # the closed form over all points.
    samples = 16_384  # block = 64 rows
    x = rng.normal(size=(200, 3))
    g = relusv_directions(3, samples, seed=1)
    r = relusv.gmw(x, samples=samples, seed=1, trim=0, return_details=True)
    np.testing.assert_allclose(r.sample_widths, closed_form_widths(g, x), rtol=1e-13)


def test_progress_callable_sees_all_rows(rng):
    seen = []
    relusv.gmw(rng.normal(size=(5000, 4)), samples=1000, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (5000, 5000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# -------------------------------------------------------------- diameter

@pytest.mark.parametrize("shape", [(2, 1), (7, 3), (513, 4), (1500, 20)])
def test_diameter_matches_pdist(rng, shape):
    x = rng.normal(size=shape) * 3 + 10
    assert relusv.diameter(x) == pytest.approx(pdist(x).max(), rel=1e-12)


def test_diameter_float32_and_degenerate_sets(rng):
    x = rng.normal(size=(700, 5))
    assert relusv.diameter(x.astype(np.float32)) == pytest.approx(pdist(x).max(), rel=1e-5)
    assert relusv.diameter(x[:1]) == 0.0
    assert relusv.diameter(np.repeat(x[:1], 10, axis=0)) == 0.0


def test_diameter_far_from_origin(rng):
    # Rows are centred at a point of the set before the Gram products.
    x = rng.normal(size=(300, 3)) + 1e6
    assert relusv.diameter(x) == pytest.approx(pdist(x).max(), rel=1e-9)


def test_diameter_is_a_pair_distance(rng):
    x = rng.normal(size=(400, 6))
    d = relusv.diameter(x)
    assert np.any(np.isclose(pdist(x), d, rtol=0, atol=1e-12))


# -------------------------------------------------------- effective dimension

def test_effective_dimension_definition(rng):
    x = rng.normal(size=(400, 10))
    expected = (relusv.gmw(x, seed=5) / pdist(x).max()) ** 2
    assert relusv.effective_dimension(x, seed=5) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_effective_dimension_of_a_subspace_ball(rng, d):
    # Unit ball of a d-dimensional subspace of R^30: w = 2 c_d, diam = 2, so
    # (w / diam)^2 = c_d^2, which lies in [d - 1/2, d]; 4,000 sphere points are
    # dense enough for d <= 3 (not for larger d). The sample includes
    # antipodal boundary points so that the diameter is exactly 2.
    basis = np.linalg.qr(rng.normal(size=(30, d)))[0].T
    u = rng.normal(size=(4000, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pts = np.vstack([u, -u[:1]]) @ basis
    r = relusv.gmw(pts, samples=4000, seed=3, trim=0, return_details=True)
    eff = relusv.effective_dimension(pts, samples=4000, seed=3, trim=0)
    cd = relusv.gaussian_to_spherical_factor(d)
    assert eff == pytest.approx((r.mean / 2) ** 2, rel=1e-12)
    assert abs(math.sqrt(eff) - cd) < 4 * r.mean_std_error / 2 + 0.01 * cd
    assert d - 0.6 < eff < d + 0.2 * d


def test_effective_dimension_of_coinciding_points_is_an_error():
    with pytest.raises(ValueError, match="coincide"):
        relusv.effective_dimension(np.ones((5, 3)))


def test_spherical_factor_argument_checks():
    for bad in (0, -3):
        with pytest.raises(ValueError):
            relusv.gaussian_to_spherical_factor(bad)
    with pytest.raises(TypeError):
        relusv.gaussian_to_spherical_factor(2.0)
