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
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.relu_singular_values(w, X=x * 1e300, max_steps=0)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"


def test_operator_gmw_overflow_is_nonfinite_or_exact(rng):
    w = rng.normal(size=(8, 5))
    c = 2.0**900
    ref = relusv.operator_gmw(w, samples=100)
    big = relusv.operator_gmw(w * c, samples=100)
    assert big.estimate == pytest.approx(ref.estimate * c, rel=1e-12)
    assert big.upper == pytest.approx(ref.upper * c, rel=1e-12)
    with pytest.raises(relusv.InvalidInputError) as info:
        relusv.operator_gmw(w, X=rng.normal(size=(20, 5)) * 1e300, relu=True, samples=100)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"
