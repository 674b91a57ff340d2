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


def test_half_precisions_are_ranked_as_float32():
    """float16 and bfloat16 weights are computed in float32 or wider: the rule's eps is float32's, so a
    large half-precision layer keeps its rank (``max(m, n) * eps_half`` would exceed 1 and give rank 0), and
    the rounding of a low-rank weight to half precision counts as rank (it is part of the stored matrix)."""
    torch = pytest.importorskip("torch")
    sigma = np.array([1.0, 0.5, 5e-3, 2e-4, 1e-6, 1e-7])
    # tolerance 10 * 2^-23 = 1.2e-6 for every floating type up to 32 bits
    for dtype in (np.float16, np.float32, torch.float16, torch.bfloat16, torch.float32):
        assert relusv.rank_of_spectrum(sigma, (10, 6), dtype) == 4
    for dtype in (np.float64, torch.float64, np.int64, torch.int64, np.complex128):
        assert relusv.rank_of_spectrum(sigma, (10, 6), dtype) == 6
    with pytest.raises(relusv.InvalidTypeError, match="NumPy or torch dtype"):
        relusv.rank_of_spectrum(sigma, (10, 6), "not a dtype")


def test_the_table_states_the_rank_of_half_precision_weights():
    """A well-conditioned 1024 x 64 layer keeps rank 64 in float16 and bfloat16 (its smallest value far
    above any rounding), as in float32."""
    torch = pytest.importorskip("torch")
    from relusv.torch import analyze

    rng = np.random.default_rng(5)
    u, _ = np.linalg.qr(rng.standard_normal((1024, 64)))
    v, _ = np.linalg.qr(rng.standard_normal((64, 64)))
    w = torch.from_numpy(u @ np.diag(np.linspace(2.0, 1.0, 64)) @ v.T)
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        model = torch.nn.Sequential(torch.nn.Linear(64, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 3)).to(dtype)
        with torch.no_grad():
            model[0].weight.copy_(w)
        x, y = torch.randn(40, 64), torch.randint(0, 3, (40,))
        table = analyze(model, x, y, relu_bounds=False, progress=False)
        assert table.loc[0, "rank"] == 64, dtype


@pytest.mark.parametrize("eps", [0.0, 1.0, float("nan"), -1e-3])
def test_the_epsilon_entry_refuses_what_is_not_a_machine_epsilon(eps):
    import ctypes

    from relusv._native import check, lib

    values = (ctypes.c_double * 2)(1.0, 0.5)
    rank = ctypes.c_size_t()
    with pytest.raises(InvalidInputError, match="machine epsilon"):
        check(lib.relusv_rank_of_spectrum_eps(values, 2, 3, 3, eps, ctypes.byref(rank)))


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
