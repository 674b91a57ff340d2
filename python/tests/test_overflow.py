"""Overflow: representable results come back exact, others as RELUSV_ERROR_NONFINITE, at every entry."""
from __future__ import annotations

import numpy as np
import pytest
import relusv


@pytest.mark.parametrize("scale", [1e155, 1e250, 1e306])
def test_gmw_is_scale_equivariant_up_to_overflow(rng, scale):
    # w(cK) = c w(K) and the standard errors scale alike: every per-direction
    # width is finite, so must be the mean and its standard error. Scale by
    # a power of two to keep the data exactly proportional.
    x = rng.normal(size=(200, 6))
    c = 2.0 ** np.floor(np.log2(scale))
    base = relusv.gmw(x, samples=300, return_details=True)
    big = relusv.gmw(x * c, samples=300, return_details=True)
    widths = big.sample_widths if big.sample_widths is not None else None
    for name in ("estimate", "std_error", "mean", "mean_std_error"):
        assert getattr(big, name) == pytest.approx(getattr(base, name) * c, rel=1e-12), name
    assert np.isfinite([big.estimate, big.std_error]).all()
    assert widths is None or np.isfinite(widths).all()


def test_width_beyond_the_range_of_double_is_nonfinite():
    x = np.array([[-1.5e308, 0.0], [1.5e308, 0.0]])  # max - min exceeds the largest double
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.gmw(x)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"


def test_accumulator_estimate_is_scale_equivariant(rng):
    x = rng.normal(size=(100, 4))
    c = 2.0**1015
    acc = relusv.GMWAccumulator(4, samples=200).update(x * c)
    ref = relusv.GMWAccumulator(4, samples=200).update(x)
    assert acc.estimate(return_details=True).std_error == \
        pytest.approx(ref.estimate(return_details=True).std_error * c, rel=1e-12)


def test_relu_singular_values_with_huge_data_is_nonfinite_not_infinite_bounds(rng):
    w = rng.normal(size=(12, 6))
    x = rng.normal(size=(40, 6))
    ok = relusv.relu_singular_values(w, X=x * 1e150, max_steps=0)  # representable: bounds scale
    ref = relusv.relu_singular_values(w, X=x, max_steps=0)
    np.testing.assert_allclose(ok.bound / 1e150, ref.bound, rtol=1e-9)
    # Pre-activations near 1e300: computed on the layer scaled down by a power of two, still representable.
    huge = relusv.relu_singular_values(w, X=x * 1e300, max_steps=0)
    np.testing.assert_allclose(huge.bound / 1e300, ref.bound, rtol=1e-9)
    with pytest.raises(relusv.InvalidInputError) as info:  # bounds near 1e310: not representable
        relusv.relu_singular_values(w * 1e10, X=x * 1e300, max_steps=0)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"


def test_operator_gmw_overflow_is_nonfinite_or_exact(rng):
    w = rng.normal(size=(8, 5))
    c = 2.0**900
    ref = relusv.operator_gmw(w, samples=100)
    big = relusv.operator_gmw(w * c, samples=100)
    assert big.estimate == pytest.approx(ref.estimate * c, rel=1e-12)
    assert big.upper == pytest.approx(ref.upper * c, rel=1e-12)
    x = rng.normal(size=(20, 5))
    layer = relusv.operator_gmw(w, X=x, relu=True, samples=100)
    huge = relusv.operator_gmw(w, X=x * 1e300, relu=True, samples=100)  # outputs near 1e300: representable
    for name in ("estimate", "upper", "norm"):
        assert getattr(huge, name) == pytest.approx(getattr(layer, name) * 1e300, rel=1e-9), name
    with pytest.raises(relusv.InvalidInputError) as info:  # outputs near 1e310
        relusv.operator_gmw(w * 1e10, X=x * 1e300, relu=True, samples=100)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"


@pytest.mark.parametrize("shape", [(3, 3), (100, 100)])
def test_float32_singular_values_beyond_float32_are_nonfinite(shape):
    w = np.full(shape, 1e37, dtype=np.float32)
    top = shape[0] * 1e37  # the one nonzero singular value of the constant matrix
    if top < float(np.finfo(np.float32).max):
        s = relusv.singular_values(w)
        assert np.isfinite(s).all() and s[0] == pytest.approx(top, rel=1e-6)
        return
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.singular_values(w)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE" and "float" in str(info.value).lower()
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.truncated_svd(w, 1)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e300), (np.float32, 3e38)])
def test_fit_gradient_overflow_is_nonfinite_not_a_nan_loss(dtype, big):
    w = np.full((3, 3), big, dtype=dtype)
    w[0, 0] = -big  # inf - inf in the products: NaN without the check
    x = np.full((4, 3), big, dtype=dtype)
    u, v = np.ones((3, 1), dtype=dtype), np.ones((1, 3), dtype=dtype)
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.relu_fit_gradient(w, None, x, u, v)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"
    loss, gu, gv = relusv.relu_fit_gradient(w / big, None, x / big, u, v)  # the same layer, representable
    assert np.isfinite(loss) and np.isfinite(gu).all() and np.isfinite(gv).all()


NEAR_MAX = {np.float64: np.finfo(np.float64).max / 4, np.float32: np.finfo(np.float32).max / 4}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_entry_with_near_max_entries_returns_values_or_nonfinite(rng, dtype):
    # Each entry either returns finite values or raises RELUSV_ERROR_NONFINITE: never inf or NaN.
    big = NEAR_MAX[dtype]
    w = (rng.choice([-1.0, 1.0], size=(6, 5)) * big).astype(dtype)
    x = (rng.choice([-1.0, 1.0], size=(30, 5)) * big).astype(dtype)
    calls = {
        "gmw": lambda: relusv.gmw(x, samples=50).estimate,
        "accumulator": lambda: relusv.GMWAccumulator(5, samples=50, dtype=dtype).update(x).estimate(),
        "effective_dimension": lambda: relusv.effective_dimension(x, samples=50),
        "diameter": lambda: relusv.diameter(x),
        "singular_values": lambda: relusv.singular_values(w),
        "truncated_svd": lambda: relusv.truncated_svd(w, 2)[1],
        "relu_singular_values": lambda: relusv.relu_singular_values(w, X=x, max_steps=5, progress=False).bound,
        "operator_gmw": lambda: relusv.operator_gmw(w, samples=50).estimate,
        "operator_gmw relu": lambda: relusv.operator_gmw(w, X=x, relu=True, samples=50).norm,
        "relu_fit_gradient": lambda: relusv.relu_fit_gradient(w, None, x, np.ones((6, 1), dtype),
                                                              np.ones((1, 5), dtype))[0],
    }
    for name, call in calls.items():
        try:
            value = call()
        except relusv.InvalidInputError as error:
            assert error.status_name == "RELUSV_ERROR_NONFINITE", (name, error)
            continue
        assert np.isfinite(value).all(), (name, value)
