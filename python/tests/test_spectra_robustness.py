"""Certified bounds stay certified when the arithmetic goes wrong.

Oracle: for the factors (U, V) a bound reports, NumPy in float64 recomputes
max_x ||ReLU(W x + b) - ReLU(U V x + b)||; a certified bound is never below it
(beyond float32 rounding) and never above t_k.
"""
import numpy as np
import pytest
import relusv


def max_error(w, b, x, u, v):
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    w, b, x, u, v = (np.asarray(a, dtype=np.float64) for a in (w, b, x, u, v))
    return np.linalg.norm(relu(x @ w.T + b) - relu(x @ v.T @ u.T + b), axis=1).max()


def check_certified(result, w, b, x, rtol):
    for k, bound, t, factors in zip(result.ks, result.bound, result.truncation_bound, result.factors):
        assert np.isfinite(bound) and bound <= t * (1 + rtol), (k, bound, t)
        u, v = factors
        assert np.all(np.isfinite(u)) and np.all(np.isfinite(v)), k
        if k > 0:
            assert bound >= max_error(w, b, x, u, v) * (1 - rtol), (k, bound)


def test_float32_products_that_overflow_do_not_yield_a_zero_bound():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 6)).astype(np.float32)
    b = np.zeros(8, dtype=np.float32)
    x = (rng.normal(size=(300, 6)) * 3e18).astype(np.float32)  # squared errors overflow float32
    result = relusv.relu_singular_values(w, X=x, return_factors=True, progress=False)
    assert np.all(result.bound > 1e18)
    check_certified(result, w, b, x, rtol=1e-4)


def test_a_diverging_fit_never_becomes_the_bound():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 6)).astype(np.float32)
    b = rng.normal(size=8).astype(np.float32) * 0.1
    x = rng.normal(size=(300, 6)).astype(np.float32)
    result = relusv.relu_singular_values(w, b, x, learning_rate=1e30, return_factors=True, progress=False)
    check_certified(result, w, b, x, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_default_fit_is_certified_against_numpy(dtype):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(10, 7)).astype(dtype)
    b = (rng.normal(size=10) * 0.2).astype(dtype)
    x = rng.uniform(-1, 1, size=(400, 7)).astype(dtype)
    result = relusv.relu_singular_values(w, b, x, return_factors=True, progress=False)
    check_certified(result, w, b, x, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("call", [
    lambda: relusv.relu_singular_values(np.ones((10, 2000)), sphere_points=2**30),
    lambda: relusv.operator_gmw(np.ones((10000, 2)), samples=2**24),
], ids=["sphere sample", "operator directions"])
def test_work_too_large_for_memory_is_refused_before_allocating(call):
    with pytest.raises(relusv.MemoryLimitError, match="GiB") as error:
        call()
    assert error.value.status_name == "RELUSV_ERROR_OUT_OF_MEMORY"


@pytest.mark.parametrize("call", [
    lambda w: relusv.relu_singular_values(w, X=np.ones((4, 2))),
    lambda w: relusv.singular_values(w),
    lambda w: relusv.operator_gmw(w),
], ids=["relu_singular_values", "singular_values", "operator_gmw"])
def test_non_finite_weights_are_named_with_one_status(call):
    w = np.array([[1.0, 0.5], [np.nan, 1.0]])
    with pytest.raises(ValueError, match=r"W contains NaN or infinity at row 1, column 0") as error:
        call(w)
    assert error.value.status_name == "RELUSV_ERROR_NONFINITE"
