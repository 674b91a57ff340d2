"""Bad input gives a clear error (or, where the input is meaningful, the right
answer), and the process survives.

Every rejected input is checked for the exception type and for a message that
names the problem; accepted unusual inputs are checked against the result
for the same points given as a plain C-contiguous float64 array.
"""
from __future__ import annotations

import ctypes

import numpy as np
import pytest
import relusv
from relusv import _native

SEED = 3


def reference(x) -> float:
    return relusv.gmw(np.ascontiguousarray(np.asarray(x, dtype=np.float64)), samples=40, seed=SEED)


def width(x) -> float:
    return relusv.gmw(x, samples=40, seed=SEED)


# ------------------------------------------------------------- rejected input

@pytest.mark.parametrize("x,error,message", [
    (np.ones(5), ValueError, "1-D with shape \\(5,\\)"),
    (np.float64(3.0), ValueError, "scalar"),
    (np.ones((5, 0)), ValueError, "0 columns"),
    (np.ones((0, 3)), ValueError, "no rows"),
    (np.ones((0, 0)), ValueError, "0 columns"),
    ([], ValueError, "1-D"),
    (np.ones((3, 2), dtype=complex), TypeError, "complex"),
    (np.array([["a", "b"]]), TypeError, "dtype <U1"),
    (np.array([[1, None]], dtype=object), TypeError, "dtype object"),
    (np.array([[1, 2]], dtype="datetime64[D]"), TypeError, "datetime64"),
    ([[1, 2], [3]], TypeError, "could not be converted"),
    (None, TypeError, "dtype object"),
    ("points", TypeError, "dtype <U6"),
    (np.ma.array([[1.0, 2.0], [3.0, 4.0]], mask=[[0, 1], [0, 0]]), TypeError, "masked"),
])
def test_rejected_arrays(x, error, message):
    with pytest.raises(error, match=message):
        width(x)


@pytest.mark.parametrize("row,col,value", [(0, 0, np.nan), (3, 2, np.inf), (9, 4, -np.inf)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_values_name_row_and_column(rng, row, col, value, dtype):
    x = rng.normal(size=(10, 5)).astype(dtype)
    x[row, col] = value
    with pytest.raises(ValueError, match=f"NaN or infinity at row {row}, column {col}") as info:
        width(x)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"
    with pytest.raises(ValueError, match=f"row {row}, column {col}"):
        relusv.diameter(x)


def test_non_finite_in_a_later_block_names_the_global_row(rng):
    # 2^20 / S rows per block: with S = 2^14 a block has 64 rows.
    x = rng.normal(size=(500, 3))
    x[321, 1] = np.nan
    with pytest.raises(ValueError, match="row 321, column 1"):
        relusv.gmw(x, samples=2**14)


def test_overflowing_products_are_reported():
    x = np.array([[3e38, 3e38], [-3e38, 3e38]], dtype=np.float32)
    with pytest.raises(ValueError, match="overflow"):
        width(x)
    assert np.isfinite(width(x.astype(np.float64)))  # fine in float64
    with pytest.raises(ValueError, match="overflow"):  # finite products, infinite max - min
        width(np.array([[5e307], [-5e307]]))


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(samples=0), ValueError, "samples must be positive"),
    (dict(samples=-5), ValueError, "samples must be positive"),
    (dict(samples=2.5), TypeError, "samples must be an integer"),
    (dict(samples=True), TypeError, "samples must be an integer"),
    (dict(samples="100"), TypeError, "samples must be an integer"),
    (dict(samples=2**24 + 1), ValueError, "exceeds the limit"),
    (dict(samples=2**64 + 5), ValueError, "too large"),
    (dict(seed=-1), ValueError, "seed must lie in"),
    (dict(seed=2**64), ValueError, "seed must lie in"),
    (dict(seed=1.0), TypeError, "seed must be an integer"),
    (dict(seed="0"), TypeError, "seed must be an integer"),
    (dict(trim=0.5), ValueError, "trim must lie in \\[0, 0.5\\)"),
    (dict(trim=-0.01), ValueError, "trim must lie in"),
    (dict(trim=float("nan")), ValueError, "trim must lie in"),
    (dict(trim=float("inf")), ValueError, "trim must lie in"),
    (dict(trim="0.1"), TypeError, "trim must be a real number"),
    (dict(trim=None), TypeError, "trim must be a real number"),
])
def test_rejected_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        relusv.gmw(np.eye(3), **kwargs)


def test_largest_seed_and_numpy_integers_are_accepted():
    x = np.eye(3)
    assert relusv.gmw(x, seed=np.uint64(2**64 - 1)) == relusv.gmw(x, seed=2**64 - 1)
    assert relusv.gmw(x, samples=np.int32(10), seed=np.int8(1)) == relusv.gmw(x, samples=10, seed=1)


def test_c_entry_points_reject_bad_sizes_directly():
    # Values a C caller could pass: size_t above Int.max, NULL pointers, bad dtypes.
    result = _native.WidthResult()
    a = np.eye(3)
    m = _native.Matrix(a.ctypes.data, _native.FLOAT64, 3, 3, 0)
    status = _native.lib.relusv_gmw(ctypes.byref(m), 2**63 + 1, 0, 0.1, 0, None, ctypes.byref(result),
                                    _native.NO_PROGRESS, None)
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_INVALID_ARGUMENT"
    assert b"exceeds the limit" in _native.lib.relusv_last_error()
    status = _native.lib.relusv_gmw(None, 10, 0, 0.1, 0, None, ctypes.byref(result), _native.NO_PROGRESS, None)
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_NULL_POINTER"
    bad = _native.Matrix(a.ctypes.data, 7, 3, 3, 0)
    status = _native.lib.relusv_gmw(ctypes.byref(bad), 10, 0, 0.1, 0, None, ctypes.byref(result),
                                    _native.NO_PROGRESS, None)
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_DTYPE"
    short = _native.Matrix(a.ctypes.data, _native.FLOAT64, 3, 3, 2)
    status = _native.lib.relusv_gmw(ctypes.byref(short), 10, 0, 0.1, 0, None, ctypes.byref(result),
                                    _native.NO_PROGRESS, None)
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_SHAPE"
    huge = _native.Matrix(a.ctypes.data, _native.FLOAT64, 2**62, 2**62, 0)
    status = _native.lib.relusv_gmw(ctypes.byref(huge), 10, 0, 0.1, 0, None, ctypes.byref(result),
                                    _native.NO_PROGRESS, None)
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_SIZE_OVERFLOW"
    handle = ctypes.c_void_p()
    status = _native.lib.relusv_gmw_accumulator_create(2**63 + 7, 10, 0, _native.FLOAT64, ctypes.byref(handle))
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_INVALID_ARGUMENT" and not handle.value
    # size_t values above 2^63 (negative as signed) in every size field
    for rows, cols, stride in [(2**64 - 1, 3, 0), (3, 2**63 + 3, 0), (3, 3, 2**64 - 1)]:
        m = _native.Matrix(a.ctypes.data, _native.FLOAT64, rows, cols, stride)
        status = _native.lib.relusv_gmw(ctypes.byref(m), 10, 0, 0.1, 0, None, ctypes.byref(result),
                                        _native.NO_PROGRESS, None)
        assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_SIZE_OVERFLOW", (rows, cols, stride)
        assert b"is too large" in _native.lib.relusv_last_error()
    state = relusv.GMWAccumulator(3, samples=2).to_bytes()
    status = _native.lib.relusv_gmw_accumulator_import(state, 2**63 + 5, ctypes.byref(handle))
    assert _native.STATUS_NAMES[status] == "RELUSV_ERROR_CORRUPT_STATE" and not handle.value


# ------------------------------------------------ accepted layouts and types

@pytest.fixture
def base(rng):
    return rng.normal(size=(12, 6))


def test_non_contiguous_layouts_give_the_same_result(base):
    expected = reference(base)
    big = np.zeros((24, 12))
    big[::2, ::2] = base
    cases = {
        "fortran": np.asfortranarray(base),
        "strided rows and columns": big[::2, ::2],
        "strided rows only": np.repeat(base, 2, axis=0)[::2],
        "negative row stride (same set, rows reversed)": base[::-1],
        "transposed view": np.ascontiguousarray(base.T).T,
        "big-endian": base.astype(">f8"),
        "read-only": np.frombuffer(base.tobytes(), dtype=np.float64).reshape(base.shape),
        "broadcast rows": np.broadcast_to(base[:1], (4, 6)),
    }
    for name, x in cases.items():
        want = reference(base[:1]) if name == "broadcast rows" else expected
        assert width(x) == pytest.approx(want, rel=1e-13, abs=0), name


def test_unaligned_data_is_copied_not_misread(base):
    raw = np.zeros(base.size * 8 + 1, dtype=np.uint8)
    x = raw[1:].view(np.float64).reshape(base.shape)  # misaligned by one byte
    x[...] = base
    assert width(x) == pytest.approx(reference(base), rel=1e-13)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.float16,
                                   np.longdouble])
def test_other_real_dtypes_are_converted(dtype):
    x = (np.arange(24).reshape(8, 3) % 5).astype(dtype)
    expected = reference(x.astype(np.float64)) if dtype != np.float16 else \
        relusv.gmw(x.astype(np.float32), samples=40, seed=SEED)
    assert width(x) == pytest.approx(expected, rel=1e-13)


def test_nested_lists_and_tuples():
    pts = [[0, 1, 2], [3.5, 4, 5], [-1, 0, 2]]
    assert width(pts) == pytest.approx(reference(np.array(pts, dtype=float)), rel=1e-13)
    assert width(tuple(map(tuple, pts))) == width(pts)


def test_trailing_dimensions_are_flattened(rng):
    x = rng.normal(size=(5, 2, 3))
    assert width(x) == width(x.reshape(5, 6))


def test_float32_is_used_in_place_without_conversion(base):
    x = base.astype(np.float32)
    assert width(x) == relusv.gmw(x, samples=40, seed=SEED)
    assert width(x) != reference(base)  # computed in float32, not float64


# ---------------------------------------------------------------- PyTorch

torch = pytest.importorskip("torch")


def test_torch_tensors(base):
    t = torch.from_numpy(base)
    assert width(t) == reference(base)
    assert width(t.float()) == width(base.astype(np.float32))
    assert width(t.clone().requires_grad_(True)) == reference(base)
    assert width(t.T.contiguous().T) == reference(base)  # non-contiguous (column-major) tensor
    assert width(t[::1, :]) == reference(base)
    assert width(torch.from_numpy(np.repeat(base, 2, axis=0))[::2]) == reference(base)
    assert width(t.to(torch.int64)) == reference(base.astype(np.int64))
    bf = t.to(torch.bfloat16)
    assert width(bf) == width(bf.float().numpy())
    assert width(t.half()) == width(t.half().float().numpy())


def test_torch_tensor_requiring_grad_is_not_modified(base):
    t = torch.from_numpy(base.copy()).requires_grad_(True)
    width(t)
    assert t.requires_grad and t.grad is None
    np.testing.assert_array_equal(t.detach().numpy(), base)


def test_torch_bad_tensors():
    with pytest.raises(TypeError, match="complex"):
        width(torch.ones(3, 2, dtype=torch.complex64))
    with pytest.raises(ValueError, match="1-D"):
        width(torch.ones(4))
    bad = torch.ones(4, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match="row 2, column 1"):
        width(bad)


def test_process_survives_a_burst_of_bad_calls(base):
    for x in (np.ones(3), np.ones((0, 2)), np.full((2, 2), np.nan), np.ones((2, 2), complex)):
        for _ in range(50):
            with pytest.raises((ValueError, TypeError)):
                width(x)
    assert width(base) == reference(base)
