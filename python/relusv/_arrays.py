"""Turning user arrays into validated matrices for the native library.

Accepted: NumPy arrays of any real dtype and layout, nested sequences, and
PyTorch tensors (detected by duck typing, so torch is never imported here).
C-contiguous float32/float64 arrays, and arrays whose rows are contiguous
but strided, are passed without a copy; everything else is converted once.
Values (NaN/Inf, empty sets, shapes that disagree) are checked by the library,
which names the offending row and column.
"""
from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from . import _native
from .errors import InvalidInputError, InvalidTypeError


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """A NumPy view (or copy) of ``x``; tensors are detached and moved to the CPU."""
    if isinstance(x, np.ma.MaskedArray):
        if np.ma.is_masked(x):
            raise InvalidTypeError(f"{name} is a masked array with masked entries; drop or fill them first "
                            f"(e.g. {name}.filled(...) or rows without masked values)")
        return np.ma.getdata(x)
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu") and hasattr(x, "numpy"):  # torch.Tensor
        t = x.detach().cpu()
        if str(t.dtype) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        return t.resolve_conj().numpy() if hasattr(t, "resolve_conj") else t.numpy()
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as error:
        raise InvalidTypeError(f"{name} could not be converted to an array: {error}") from None


def as_float_array(x: Any, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``x`` as a float32 or float64 array, keeping float32/float64 input as is.

    float16 becomes float32; integers, booleans and other floats become
    float64 (or ``dtype`` if given).
    """
    a = to_numpy(x, name)
    if a.dtype.kind == "c":
        raise InvalidTypeError(f"{name} is complex ({a.dtype}); relusv works with real numbers")
    if a.dtype.kind not in "fiub":
        raise InvalidTypeError(f"{name} has dtype {a.dtype}; expected real numbers")
    if dtype is not None:
        return a.astype(dtype, copy=False)
    if a.dtype in (np.float32, np.float64):
        return a
    return a.astype(np.float32 if a.dtype == np.float16 else np.float64)


def as_points(x: Any, name: str = "x", dtype: Any = None) -> np.ndarray:
    """``x`` as a 2-D float array of points (rows), trailing dimensions flattened."""
    a = as_float_array(x, name, dtype)
    if a.ndim == 0:
        raise InvalidInputError(f"{name} is a scalar; expected a 2-D array of points (rows are points)")
    if a.ndim == 1:
        raise InvalidInputError(
            f"{name} is 1-D with shape {a.shape}; expected a 2-D array of points (rows are points). "
            f"Use {name}.reshape(-1, 1) for scalar points or {name}.reshape(1, -1) for a single point."
        )
    if a.ndim > 2:
        a = a.reshape(a.shape[0], int(np.prod(a.shape[1:])))  # (-1 is ambiguous with no rows)
    return a


def matrix(a: np.ndarray) -> _native.Matrix:
    """The ``relusv_matrix`` describing a 2-D float32/float64 array.

    Rows must be contiguous (unit column stride); otherwise the caller gets a
    C-contiguous copy via ``prepare``. The array must outlive the struct.
    """
    dtype = _native.FLOAT32 if a.dtype == np.float32 else _native.FLOAT64
    rows, cols = a.shape
    stride = a.strides[0] // a.itemsize if rows > 1 else cols
    data = a.ctypes.data if a.size else None
    return _native.Matrix(data, dtype, rows, cols, stride)


def prepare(a: np.ndarray) -> np.ndarray:
    """``a`` unchanged when the library can read it in place, else a C-contiguous copy."""
    a = a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))
    rows_ok = a.ndim == 2 and (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
    stride_ok = a.ndim == 2 and a.strides[0] > 0 and a.strides[0] % a.itemsize == 0 \
        and (a.shape[0] <= 1 or a.strides[0] >= a.shape[1] * a.itemsize)
    if rows_ok and stride_ok and a.ctypes.data % a.itemsize == 0:
        return a
    return np.ascontiguousarray(a)


def double_buffer(n: int) -> tuple[np.ndarray, Any]:
    """A float64 array of length ``n`` and a ``double *`` to its data."""
    out = np.empty(n, dtype=np.float64)
    return out, out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
