"""relusv_set_extremes: the column-wise extremes behind every set functional of MATH.md section 11.

Oracle: NumPy's maximum / minimum reductions over the gathered rows (NaN and infinities included).
Bad input (an index out of range, float32 values, an empty set, NULL pointers) is refused with the
error family, naming the problem; the comparisons built on it equal their definitions elsewhere
(test_compare.py, test_torch_analyze.py).
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
import relusv
from relusv import _native
from relusv._arrays import matrix
from relusv.analysis.compare import Functional, set_extremes


def _oracle(values, sets):
    gathered = values[sets]
    return np.maximum.reduce(gathered, axis=1), np.minimum.reduce(gathered, axis=1)


@pytest.mark.parametrize("columns", [1, 7, 8, 9, 100])
def test_extremes_equal_numpy(columns):
    rng = np.random.default_rng(columns)
    values = rng.standard_normal((300, columns))
    sets = rng.integers(0, 300, (1000, 37))
    hi, lo = set_extremes(values, sets)
    want_hi, want_lo = _oracle(values, sets)
    assert np.array_equal(hi, want_hi) and np.array_equal(lo, want_lo)


def test_nan_propagates_and_infinities_are_values():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((50, 11))
    values[3, [0, 9]] = np.nan       # in the vectorised part and in the tail
    values[4, 1], values[5, 10] = np.inf, -np.inf
    sets = rng.integers(0, 50, (400, 6))
    sets[0, :] = 3                  # a set of the NaN row alone
    hi, lo = set_extremes(values, sets)
    want_hi, want_lo = _oracle(values, sets)
    assert np.array_equal(hi, want_hi, equal_nan=True) and np.array_equal(lo, want_lo, equal_nan=True)
    assert np.isnan(hi[0, 0]) and np.isinf(want_hi).any() and np.isnan(want_hi).any()


def test_strided_values_and_a_single_member():
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((40, 30))
    values = wide[:, :17]                      # rows not contiguous with each other: read in place
    sets = rng.integers(0, 40, (25, 1))
    hi, lo = set_extremes(values, sets)
    assert np.array_equal(hi, values[sets[:, 0]]) and np.array_equal(lo, values[sets[:, 0]])


def test_the_functional_uses_it():
    rng = np.random.default_rng(3)
    values = rng.standard_normal((60, 20))
    f = Functional("range", values, lambda hi, lo: (hi - lo).mean(axis=1))
    sets = rng.integers(0, 60, (3, 4, 9))
    got = f.evaluate(sets)
    gathered = values[sets]
    assert got.shape == (3, 4)
    assert np.allclose(got, (gathered.max(axis=2) - gathered.min(axis=2)).mean(axis=2), rtol=0, atol=1e-15)


def _call(values, sets, count=None, size=None, hi=True, lo=True):
    m = matrix(values)
    sets = np.ascontiguousarray(sets, dtype=np.int64)
    count = sets.shape[0] if count is None else count
    size = sets.shape[1] if size is None else size
    out = np.empty(max(1, count * values.shape[1]))
    double = ctypes.POINTER(ctypes.c_double)
    return _native.lib.relusv_set_extremes(
        ctypes.byref(m), sets.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) if sets.size else None, count, size,
        out.ctypes.data_as(double) if hi else None, out.ctypes.data_as(double) if lo else None,
        _native.NO_PROGRESS, None)


def test_bad_input_is_refused_naming_the_problem():
    values = np.zeros((5, 3))
    with pytest.raises(relusv.InvalidInputError, match=r"sets\[1\]\[0\] = 5 is not a row index in \[0, 5\)"):
        set_extremes(values, np.array([[0, 1], [5, 2]]))
    with pytest.raises(relusv.InvalidInputError, match=r"sets\[0\]\[1\] = -1"):
        set_extremes(values, np.array([[0, -1]]))
    with pytest.raises(relusv.ReluSVError, match="RELUSV_FLOAT64"):
        _native.check(_call(values.astype(np.float32), np.zeros((2, 2))))
    with pytest.raises(relusv.ReluSVError, match="set_size = 0"):
        _native.check(_call(values, np.zeros((2, 0))))
    with pytest.raises(relusv.ReluSVError, match="hi is NULL"):
        _native.check(_call(values, np.zeros((2, 2)), hi=False))
    with pytest.raises(relusv.ReluSVError, match="sets is NULL"):
        _native.check(_call(values, np.zeros((0, 2)), count=2, size=2))
    assert _call(values, np.zeros((0, 2))) == 0                  # no sets: nothing to do
    assert _call(values, np.zeros((2, 2)), lo=False) == 0        # maxima only
