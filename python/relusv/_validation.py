"""The one place where relusv checks and coerces Python arguments.

Python checks only what ctypes cannot: the type of a scalar and whether it
fits the C type it is passed as (ctypes would silently wrap an integer
beyond 64 bits, or truncate a float). Meaning checks (ranges of trim, ranks,
shapes, memory) belong to the library, which reports them with its own
messages; they are repeated here only where NumPy or torch would fail first
with an unclear error. Every failure raises relusv's own error types
(``InvalidTypeError``, ``InvalidInputError``).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .errors import InvalidInputError, InvalidTypeError

MAX_SIZE = 2**63 - 1
"""Largest ``size_t`` the library accepts (it reads sizes as signed 64-bit)."""
MAX_UINT64 = 2**64 - 1
DEFAULT_SEED = 0


def integer(value: Any, name: str, low: int = 0, high: int = MAX_SIZE) -> int:
    """``value`` as a Python int in ``[low, high]``; bools, floats and other types are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not low <= v <= high:
        raise InvalidInputError(f"{name} must lie in [{low}, {_power(high)}], got {v}")
    return v


def positive_int(value: Any, name: str, high: int = MAX_SIZE) -> int:
    """``integer(value, name, 1, high)``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value <= 0:
            raise InvalidInputError(f"{name} must be positive, got {value}")
        if value > high:  # ctypes would silently wrap it modulo 2**64
            raise InvalidInputError(f"{name} = {value} is too large (at most {_power(high)})")
    return integer(value, name, 1, high)


def seed(value: Optional[int]) -> int:
    """A seed in ``[0, 2**64 - 1]``; ``None`` is the fixed default seed."""
    return DEFAULT_SEED if value is None else integer(value, "seed", 0, MAX_UINT64)


def real(value: Any, name: str) -> float:
    """``value`` as a float; bools and non-numbers are refused (ranges are the library's)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        return float(value)
    except OverflowError:
        raise InvalidInputError(f"{name} = {value} is too large for a float") from None


def finite_real(value: Any, name: str) -> float:
    """``real`` that is also finite."""
    v = real(value, name)
    if not math.isfinite(v):
        raise InvalidInputError(f"{name} must be finite, got {v}")
    return v


def relu_family_slope(slope: float) -> bool:
    """Whether a leaky ReLU of negative slope ``slope`` is of the ReLU family, ``0 <= slope < 1`` (MATH.md
    section 1; the engine's ``leaky_slope`` rule), whose ReLU quantities relusv computes."""
    return 0.0 <= slope < 1.0


def trim(value: Any, name: str = "trim") -> float:
    """A trimmed mean's cut fraction in ``[0, 0.5)``, the library's rule (``relusv.gmw``), for means taken in
    Python (the analysis table's GMW comparison)."""
    v = real(value, name)
    if not 0.0 <= v < 0.5:
        raise InvalidInputError(f"{name} must lie in [0, 0.5), got {v}")
    return v


def required(value: Any, name: str, what: str = "an array") -> Any:
    """``value`` unless it is None."""
    if value is None:
        raise InvalidTypeError(f"{name} is required: expected {what}, got None")
    return value


def finite_array(a: Any, name: str) -> None:
    """Refuses NaN or infinity in a NumPy array or torch tensor, naming the first position."""
    if hasattr(a, "detach"):  # torch.Tensor: check on its device, copy only the verdict
        t = a.detach()
        if not (t.is_floating_point() or t.is_complex()):
            return
        bad = ~t.isfinite()
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0].tolist())
            raise InvalidInputError(f"{name} contains NaN or infinity at index {index}")
        return
    arr = np.asarray(a)
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInputError(f"{name} contains NaN or infinity at index {index}")


def class_of_rows(rows: np.ndarray, floating: bool, name: str = "the targets") -> np.ndarray:
    """The class of each row of an ``(N, C)`` target matrix (``C > 1``): one-hot rows, or (``floating``
    targets) class probabilities, nonnegative and summing to 1 within ``1e-3``, give their argmax (the
    first largest entry); any other matrix is refused with ``InvalidInputError``."""
    r = np.asarray(rows, dtype=np.float64)
    one_hot = bool((((r == 0) | (r == 1)).all()) and (r.sum(axis=1) == 1).all())
    probabilities = bool(floating and np.isfinite(r).all() and (r >= 0).all()
                         and np.allclose(r.sum(axis=1), 1.0, rtol=0.0, atol=1e-3))
    if not (one_hot or probabilities):
        raise InvalidInputError(f"{name} of shape {tuple(r.shape)} are neither one-hot rows nor class "
                                "probabilities; pass class indices (one per point)")
    return r.argmax(axis=1)


def labels(y: Any, classes: Optional[int], name: str = "labels") -> np.ndarray:
    """Class labels as int64 indices in ``[0, classes)`` (``[0, inf)`` when ``classes`` is None).

    The one check of labels for ``relusv.torch`` (``analyze``, ``Monitor``, ``harmonic_prune``, through
    ``probe.class_targets``) and the report. Integer labels are taken as they are; float labels only
    when every entry is finite and integral (``2.0``, never ``2.9``), so no label is truncated; booleans
    are the classes 0 and 1.

    Parameters
    ----------
    y : array_like or torch.Tensor
        The labels (any shape; entries are counted in C order).
    classes : int or None
        The number of classes (the model's logits).
    name : str
        How messages name the labels.

    Returns
    -------
    numpy.ndarray of int64, the shape of ``y``.

    Raises
    ------
    InvalidTypeError
        Labels that are neither booleans, integers nor floats (complex, strings, objects).
    InvalidInputError
        Naming the first offending entry: NaN or infinity, a fraction, or a value outside the range.

    Examples
    --------
    >>> labels(np.array([0.0, 2.0]), 3).tolist()
    [0, 2]
    """
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    flat = arr.reshape(-1)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(flat)
        bad[~bad] = flat[~bad] != np.floor(flat[~bad])
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidInputError(f"{name} must be integer class indices, got {flat[i]} at position {i}")
    high = MAX_SIZE if classes is None else classes - 1
    bad = (flat < 0) | (flat > high)
    if bad.any():
        i = int(np.argmax(bad))
        value = str(flat[i]) if arr.dtype.kind == "f" else int(flat[i])
        raise InvalidInputError(f"{name} must lie in [0, {_power(high)}], got {value} at position {i}")
    return arr.astype(np.int64)


def _power(high: int) -> str:
    return {MAX_SIZE: "2**63 - 1", MAX_UINT64: "2**64 - 1"}.get(high, str(high))


def checked_tensor_extent(size: tuple, stride: tuple, offset: Any, storage_numel: int, what: str) -> int:
    """The element count ``prod(size)`` of a strided view, after checking that it is well formed and that
    every element it addresses lies inside a storage of ``storage_numel`` elements.

    A view may repeat storage (stride 0) or share it with other views: its element count, not its
    storage, is what a copy of it takes.
    """
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (*size, *stride, offset))
    if not ints or len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0:
        raise InvalidInputError(f"{what} has a malformed shape {size}, strides {stride} or offset {offset}")
    numel = math.prod(size)
    if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage_numel:
        raise InvalidInputError(f"{what} of shape {size} and strides {stride} reaches beyond its storage of "
                                f"{storage_numel} elements")
    return numel
