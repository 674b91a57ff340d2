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


def scale_exponent(values: Any) -> int:
    """The ``e`` with the largest magnitude of ``values`` in ``[2^(e-1), 2^e)``: ``values * 2^-e`` is exact and
    has its largest magnitude in ``[1/2, 1)``, so that neither squares nor products of it overflow or underflow
    (``np.ldexp(v, -e)``, and back with ``np.ldexp(r, e)``). 0 where every value is 0 or one is not finite."""
    top = float(np.abs(np.asarray(values)).max(initial=0.0))
    return int(np.frexp(top)[1]) if 0 < top < np.inf else 0


def is_model(x: Any) -> bool:
    """Whether ``x`` looks like a network (a ``torch.nn.Module``: ``forward`` and ``parameters``)."""
    return callable(getattr(x, "forward", None)) and callable(getattr(x, "parameters", None))


def refuse_model(x: Any, name: str) -> None:
    """Raises ``InvalidTypeError`` when a model is passed where numbers are expected."""
    if is_model(x):
        raise InvalidTypeError(
            f"{name} is a model ({type(x).__name__}), not an array: for a whole network use "
            f"relusv.torch.analyze(model, X, y); for one layer pass its activations or weight "
            f"(layer.weight), or use relusv.torch.relu_singular_values(layer, inputs)")


def refuse_list_of_arrays(x: Any, name: str) -> None:
    """Raises ``InvalidInputError`` for a list or tuple of 2-D (or larger) arrays.

    NumPy would stack them into one array whose first axis counts the arrays,
    so ``gmw([batch1, batch2])`` would measure 2 points of dimension
    ``batch.size`` instead of the points of both batches.
    """
    if isinstance(x, (list, tuple)) and x and all(len(getattr(e, "shape", ())) >= 2 for e in x):
        shapes = ", ".join(str(tuple(e.shape)) for e in x[:3]) + (", ..." if len(x) > 3 else "")
        raise InvalidInputError(
            f"{name} is a {type(x).__name__} of {len(x)} arrays ({shapes}); relusv takes one array whose rows "
            f"are points. To use the points of all of them, pass np.concatenate({name}) (torch.cat for tensors)")


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """A NumPy view (or copy) of ``x``; tensors are detached and moved to the CPU.

    A model (``torch.nn.Module``) is refused with a pointer to
    ``relusv.torch.analyze``.
    """
    refuse_model(x, name)
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
    """``x`` as a 2-D float array of points (rows), trailing dimensions flattened.

    A list of 2-D arrays is refused (``refuse_list_of_arrays``); a list of
    points (1-D arrays or numbers) is one point per entry.
    """
    refuse_list_of_arrays(x, name)
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


# ------------------------------------------------------------------ probe data of relusv.torch

def is_loader(x: Any) -> bool:
    """Whether ``x`` is an iterable of batches without indexing (a ``DataLoader``, a generator)."""
    return hasattr(x, "__iter__") and not hasattr(x, "__getitem__")


def require_labels(x: Any, y: Any) -> None:
    """Raises ``InvalidInputError`` when labels are missing for an array or tensor of inputs.

    Without ``y``, ``X`` must carry its targets: a dataset of ``(input, target)``
    pairs or a loader of such batches.
    """
    if y is None and hasattr(x, "shape") and hasattr(x, "dtype"):
        raise InvalidInputError(
            "y is missing: the labels of X are needed to split the points into correctly and incorrectly "
            "classified ones, e.g. relusv.torch.analyze(model, X, y); without y, X must be a dataset of "
            "(input, target) pairs or a DataLoader of such batches")


def require_floating_inputs(x: Any, model: Any, name: str = "X") -> None:
    """Raises ``InvalidTypeError`` for integer, boolean or complex inputs of a model without embeddings.

    The first layer of such a model is a floating-point Linear or Conv2d, so
    these inputs would fail deep inside torch; the message says how to convert
    them. Models with an embedding module (which takes integer indices) are
    left alone.
    """
    dtype = getattr(x, "dtype", None)
    modules = getattr(model, "modules", None)
    if dtype is None or (callable(modules) and any("Embedding" in type(m).__name__ for m in modules())):
        return
    if hasattr(dtype, "is_floating_point"):   # a torch.dtype
        is_float = dtype.is_floating_point
    else:
        try:
            is_float = np.dtype(dtype).kind == "f"
        except TypeError:
            return
    if not is_float:
        raise InvalidTypeError(
            f"{name} has dtype {dtype}; a model takes floating-point inputs: pass {name}.astype(np.float32) "
            f"(NumPy) or {name}.float() (torch), scaled as in training")


def loader_points(x: Any, y: Any = None) -> tuple:
    """``(inputs, targets)`` of every batch of a loader, concatenated; ``(x, y)`` unchanged otherwise.

    For consumers that read their probe set by index many times (the
    monitor): a loader of ``(inputs, targets, ...)`` batches is read once.
    """
    if y is not None or not is_loader(x):
        return x, y
    import torch

    inputs, targets = [], []
    for batch in x:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise InvalidTypeError("a probe DataLoader must yield (inputs, targets) pairs")
        inputs.append(torch.as_tensor(batch[0]))
        targets.append(torch.as_tensor(batch[1]))
    if not inputs:
        raise InvalidInputError("the probe DataLoader yielded no batches")
    return torch.cat(inputs), torch.cat(targets)
