"""The library's one numerical-rank rule (relusv.numerical_rank, relusv.rank_of_spectrum) against NumPy's
``matrix_rank`` (the same convention: values above ``max(m, n) * eps * sigma_0``)."""
import numpy as np
import pytest
import relusv
from relusv.errors import InvalidInputError


def _low_rank(rng, m, n, r, dtype):
    return (rng.standard_normal((m, r)) @ rng.standard_normal((r, n))).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,r", [((30, 20), 7), ((20, 30), 20), ((5, 5), 0), ((40, 3), 3), ((1, 9), 1)])
def test_numerical_rank_equals_numpy_matrix_rank(dtype, shape, r):
    a = _low_rank(np.random.default_rng(r), *shape, r, dtype)
    assert relusv.numerical_rank(a) == np.linalg.matrix_rank(a) == r


def test_rank_of_spectrum_applies_the_rule_of_the_precision():
    sigma = np.array([1.0, 1e-3, 1e-8, 1e-14])
    # float64: tolerance 10 * 2.2e-16; float32: 10 * 1.2e-7
    assert relusv.rank_of_spectrum(sigma, (10, 4), np.float64) == 4
    assert relusv.rank_of_spectrum(sigma, (10, 4), np.float32) == 2
    assert relusv.rank_of_spectrum(np.zeros(3), (3, 3), np.float64) == 0
    assert relusv.rank_of_spectrum([], (0, 3), np.float64) == 0


def test_the_table_and_pruning_use_the_rule():
    from relusv.layer_table import data_rank

    rng = np.random.default_rng(1)
    w, x = rng.standard_normal((8, 12)), _low_rank(rng, 50, 12, 5, np.float64)
    assert data_rank(w, x) == np.linalg.matrix_rank(x @ w.T) == 5


@pytest.mark.parametrize("values,message", [([1.0, 2.0], "descending"), ([1.0, np.nan], "finite"),
                                            ([1.0, -1.0], "finite nonnegative"), ([1.0] * 4, "at most")])
def test_rank_of_spectrum_refuses_bad_values(values, message):
    with pytest.raises(InvalidInputError, match=message):
        relusv.rank_of_spectrum(values, (3, 3), np.float64)
