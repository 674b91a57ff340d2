"""Property-based tests (hypothesis) of the Python API's invariants and error contract.

Invariants checked against independent facts: widths are invariant under
translation and equivariant under scaling (MATH.md section 4); streaming in
any batches equals one call up to product rounding; merging is order
independent and exact; the state round-trips byte for byte. The error
contract: whatever a caller passes, relusv returns a value or raises one of
its own errors (``ReluSVError``), never another exception, a crash or a hang.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
import relusv  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)
points = st.integers(1, 30).flatmap(
    lambda n: st.integers(1, 6).flatmap(lambda d: hnp.arrays(np.float64, (n, d), elements=finite)))
seeds = st.integers(0, 2**64 - 1)


@SETTINGS
@given(points, seeds, st.floats(-1e3, 1e3), st.integers(-40, 40))
def test_width_is_translation_invariant_and_scale_equivariant(x, seed, shift, exponent):
    base = relusv.gmw(x, samples=40, seed=seed, trim=0, return_details=True)
    scale = 2.0**exponent  # exact scaling: the per-direction products scale exactly
    scaled = relusv.gmw(x * scale, samples=40, seed=seed, trim=0, return_details=True)
    np.testing.assert_allclose(scaled.sample_widths, base.sample_widths * scale, rtol=1e-12, atol=0)
    moved = relusv.gmw(x + shift, samples=40, seed=seed, trim=0, return_details=True)
    # Translation changes each product by <g, shift>, rounding at the scale of the points.
    tol = 1e-9 * (np.abs(x).max() + abs(shift) + 1) * math.sqrt(x.shape[1]) * 10
    np.testing.assert_allclose(moved.sample_widths, base.sample_widths, atol=tol)
    assert base.estimate >= 0 and (x.shape[0] > 1 or base.estimate == 0)


@SETTINGS
@given(points, seeds, st.data())
def test_streaming_and_merging_equal_one_call(x, seed, data):
    n, d = x.shape
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    parts = np.split(x, cuts)
    one = relusv.GMWAccumulator(d, samples=25, seed=seed).update(x)
    streamed = relusv.GMWAccumulator(d, samples=25, seed=seed)
    workers = []
    for part in parts:
        streamed.update(part)
        workers.append(relusv.GMWAccumulator(d, samples=25, seed=seed).update(part))
    order = data.draw(st.permutations(range(len(workers))))
    merged = relusv.GMWAccumulator(d, samples=25, seed=seed)
    for i in order:
        merged.merge(workers[i])
    hi, lo = one.extremes
    scale = (np.abs(x).max() + 1) * math.sqrt(d) * 1e-12 * 10
    for acc in (streamed, merged):
        assert acc.points == n
        np.testing.assert_allclose(acc.extremes[0], hi, atol=scale)
        np.testing.assert_allclose(acc.extremes[1], lo, atol=scale)
    # Merging is exact: the same extremes whatever the order.
    again = relusv.GMWAccumulator(d, samples=25, seed=seed)
    for w in reversed(workers):
        again.merge(w)
    np.testing.assert_array_equal(again.extremes, merged.extremes)
    # The state round-trips byte for byte.
    assert relusv.GMWAccumulator.from_bytes(merged.to_bytes()).to_bytes() == merged.to_bytes()


anything = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3), st.lists(st.floats(allow_nan=True), max_size=4),
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.complex128, np.bool_, np.float16]),
               hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
)


def _contract(call):
    """A value, or one of relusv's own errors: nothing else."""
    try:
        call()
    except relusv.ReluSVError:
        pass


@SETTINGS
@given(anything, anything, anything, anything)
def test_gmw_error_contract(x, samples, seed, trim):
    _contract(lambda: relusv.gmw(x, samples=samples if samples is not None else 10, seed=seed,
                                 trim=trim if trim is not None else 0.1))


@SETTINGS
@given(anything, anything, anything)
def test_spectra_error_contract(w, x, k):
    _contract(lambda: relusv.singular_values(w))
    _contract(lambda: relusv.truncated_svd(w, k))
    _contract(lambda: relusv.relu_singular_values(w, X=x, max_steps=0, sphere_points=16))
    _contract(lambda: relusv.operator_gmw(w, samples=10))
    _contract(lambda: relusv.relu_fit_gradient(w, None, x, w, x))


@SETTINGS
@given(anything, anything, anything, st.binary(max_size=200))
def test_accumulator_error_contract(dimension, samples, batch, state):
    _contract(lambda: relusv.GMWAccumulator(dimension, samples=samples if samples is not None else 5))
    acc = relusv.GMWAccumulator(3, samples=5)
    _contract(lambda: acc.update(batch))
    _contract(lambda: acc.merge_extremes(batch, batch, dimension))
    _contract(lambda: relusv.GMWAccumulator.from_bytes(state))
    assert acc.points >= 0
