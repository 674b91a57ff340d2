"""Certification at every scale: bounds of layers whose outputs are tiny (down to the
smallest normal numbers) or huge stay above the float64 error of their own factors.

The oracle recomputes every error from the returned factors in float64 with
NumPy, on the layer scaled by powers of two (``act(t s (W x + b)) = t s act(W x + b)``,
the factors' ``U`` scaled with ``W``): exact rescalings that keep every square
far from underflow, then scaled back. The engine's GEMMs and NumPy's round in
another order, so ``bound >= error - tol`` with ``tol = 1e-9`` times the size of
the outputs ``max_i ||W x_i + b||``: far below the factors of 1.6-2.5 (float32 at
1e-25) and the zeros (float64 at 1e-165) that squared errors underflowing gave.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import relusv

SLACK = 1e-9
# pytest.approx is given abs=0 throughout: its default absolute tolerance (1e-12) would pass any tiny value.


def power_of_two_below(a: np.ndarray) -> float:
    largest = float(np.max(np.abs(a)))
    return 2.0 ** -math.floor(math.log2(largest)) if largest > 0 else 1.0


def errors(w, b, x, u, v, slope=0.0):
    """max_i ||act(U V x_i + b) - act(W x_i + b)|| in float64, scaled so no square underflows."""
    w, b, x, u, v = (np.asarray(a, dtype=np.float64) for a in (w, b, x, u, v))
    s, t = power_of_two_below(x), power_of_two_below(w)
    xs, ws, us, bs = x * s, w * t, u * t, b * (s * t)

    def act(z):
        return np.where(z > 0, z, slope * z)

    target = act(xs @ ws.T + bs)
    approx = act((xs @ v.T) @ us.T + bs)
    return np.linalg.norm(approx - target, axis=1).max() / (s * t), np.linalg.norm(xs @ ws.T + bs, axis=1).max() / (
        s * t)


def k0_value(w, b, x, slope=0.0):
    """max_i ||act(W x_i + b) - act(b)||, the exact k = 0 value, scaled alike."""
    zero_u = np.zeros((w.shape[0], 1))
    zero_v = np.zeros((1, w.shape[1]))
    return errors(w, b, x, zero_u, zero_v, slope)[0]


def entries(rng, shape, scale, dtype):
    """Signed entries of magnitude in [1, 4) times `scale`: normal numbers down to the smallest."""
    return (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(1, 4, size=shape) * scale).astype(dtype)


CASES = [  # (dtype, scale of X, scale of W)
    (np.float32, 1e-25, 1.0),
    (np.float32, 1.2e-38, 1.0),  # X down to the smallest normal float32 numbers
    (np.float32, 1.0, 1e-30),
    (np.float64, 1e-165, 1.0),
    (np.float64, 1e-300, 1.0),
    (np.float64, 2.3e-308, 1.0),  # the smallest normal float64 numbers
    (np.float64, 1.0, 1e-300),
    (np.float64, 1e-160, 1e-140),
    (np.float64, 1e150, 1e150),  # huge: pre-activations near 1e300
]


@pytest.mark.parametrize("dtype, xscale, wscale", CASES)
def test_bounds_are_certified_at_every_scale(dtype, xscale, wscale):
    rng = np.random.default_rng(5)
    w = entries(rng, (8, 6), wscale, dtype)
    b = entries(rng, 8, xscale * wscale, dtype)
    x = entries(rng, (60, 6), xscale, dtype)
    assert np.all(np.abs(x) >= np.finfo(dtype).tiny)  # normal numbers only
    r = relusv.relu_singular_values(w, b, X=x, max_steps=30, return_factors=True, threads=1, progress=False)
    assert r.dtype == np.dtype(dtype).name
    exact = k0_value(w, b, x)
    assert exact > 0 and r.source[0] == "exact"
    assert r.bound[0] == pytest.approx(exact, rel=1e-5 if dtype == np.float32 else 1e-12, abs=0)
    for k, bound, (u, v) in zip(r.ks, r.bound, r.factors):
        assert u.shape[1] <= k and np.isfinite(bound)
        error, size = errors(w, b, x, u, v)
        assert bound >= error - SLACK * size, (k, bound, error)
        assert bound > 0 or error <= SLACK * size, (k, bound, error)  # "zero" only when it is


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e-25), (np.float32, 1.2e-38), (np.float64, 1e-165),
                                          (np.float64, 2.3e-308), (np.float64, 1e150)])
def test_diameter_and_operator_norm_at_every_scale(dtype, scale):
    rng = np.random.default_rng(6)
    x = entries(rng, (40, 5), scale, dtype)
    w0 = rng.normal(size=(7, 5))
    c = power_of_two_below(x)
    xs = x.astype(np.float64) * c
    reference = max(np.linalg.norm(xs[i] - xs[j]) for i in range(len(xs)) for j in range(i)) / c
    d = relusv.diameter(x)
    assert d == pytest.approx(reference, rel=1e-6 if dtype == np.float32 else 1e-12, abs=0)
    w = w0.astype(dtype)
    norm = relusv.operator_gmw(w, X=x, relu=True, samples=20).norm
    outputs = np.maximum(xs @ w.astype(np.float64).T, 0)
    assert norm == pytest.approx(np.linalg.norm(outputs, axis=1).max() / c, abs=0, rel=1e-5 if dtype == np.float32
                                 else 1e-12)
    assert relusv.relu_singular_values(w, X=x, ks=[0], max_steps=0, progress=False).data_max_norm == \
        pytest.approx(np.linalg.norm(xs, axis=1).max() / c, rel=1e-12, abs=0)


@pytest.mark.parametrize("dtype, exponents", [(np.float64, [-550, -1000, 600]), (np.float32, [-90, -60, 70])])
def test_a_layer_scaled_by_a_power_of_two_gives_its_bounds_scaled(dtype, exponents):
    # The problem is evaluated at the scale where nothing under- or overflows, so the whole
    # curve, fits included, is the unit-scale curve times the power of two, bit for bit:
    # the fits move as well at 2^-1000 as at 1 (their gradient moments would underflow otherwise).
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 20)).astype(dtype)
    b = (0.3 * rng.normal(size=30)).astype(dtype)
    x = rng.normal(size=(300, 20)).astype(dtype)
    ref = relusv.relu_singular_values(w, b, X=x, max_steps=100, threads=1, progress=False)
    assert ref.source.count("refine") + ref.source.count("fit") > 5
    for e in exponents:
        s = dtype(2.0**e)
        r = relusv.relu_singular_values(w, b * s, X=x * s, max_steps=100, threads=1, progress=False)
        np.testing.assert_array_equal(r.bound, ref.bound * 2.0**e)
        np.testing.assert_array_equal(r.truncation_bound, ref.truncation_bound * 2.0**e)
        assert r.source == ref.source
        assert r.data_max_norm == ref.data_max_norm * 2.0**e


def _needed_bytes(w, x) -> float:
    """The bytes the memory check says the call needs (refused under a 1 KiB limit)."""
    import re

    relusv.set_memory_limit(1024)
    try:
        with pytest.raises(relusv.MemoryLimitError) as info:
            relusv.relu_singular_values(w, X=x, max_steps=0, progress=False)
    finally:
        relusv.set_memory_limit(None)  # the default again
    value, unit = re.search(r"needs ([\d.]+) (bytes|KiB|MiB|GiB)", str(info.value)).groups()
    return float(value) * {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]


def test_the_scaled_copy_of_extreme_points_is_in_the_memory_estimate():
    rng = np.random.default_rng(2)
    w, x = rng.normal(size=(10, 64)), rng.normal(size=(4000, 64))
    unit, tiny = _needed_bytes(w, x), _needed_bytes(w, x * 2.0**-900)
    assert tiny - unit == pytest.approx(8 * x.size, abs=0.25 * 2**20)  # the message rounds to 0.1 MiB
