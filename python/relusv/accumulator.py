"""Streaming Gaussian mean width: ``GMWAccumulator``."""
from __future__ import annotations

import ctypes
from typing import Any, Optional

import numpy as np

from . import _arrays, _native, _validation
from ._handle import NativeHandle
from ._native import check, lib
from ._progress import ProgressOption, ProgressSession
from .errors import InvalidInputError, InvalidTypeError
from .width import DEFAULT_SAMPLES, DEFAULT_TRIM, WidthEstimate, _positive_int, _seed, _trim

_DTYPES = {"float32": _native.FLOAT32, "float64": _native.FLOAT64}


class GMWAccumulator:
    """Gaussian mean width of a set that arrives in batches.

    Keeps, for each of ``samples`` fixed Gaussian directions ``g_j``, the
    running maximum and minimum of ``<g_j, x>`` over all points seen. Feeding
    the points in batches of any size gives ``relusv.gmw`` of the whole set
    with the same seed (the same directions; equal up to the rounding of
    single products, which BLAS may round differently by a few units of
    ``eps * |g| |x|`` depending on the batch shape); accumulators with equal
    ``(dimension, samples, seed, dtype)`` merge exactly in any order
    (elementwise max/min), so data-parallel workers can all-reduce them. Memory is O(samples * dimension).

    Parameters
    ----------
    dimension : int
        Dimension n of the points (after flattening trailing dimensions).
    samples : int, default 100
    seed : int or None, default None (seed 0)
    dtype : {"float64", "float32"}, default "float64"
        Precision of the products; batches are converted to it.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> x = np.random.default_rng(0).normal(size=(1000, 5))
    >>> acc = relusv.GMWAccumulator(5, seed=1)
    >>> for batch in np.array_split(x, 7):
    ...     acc.update(batch)
    >>> abs(acc.estimate() - relusv.gmw(x, seed=1)) < 1e-12
    True
    """

    def __init__(self, dimension: int, samples: int = DEFAULT_SAMPLES, seed: Optional[int] = None,
                 dtype: str = "float64"):
        dimension = _positive_int(dimension, "dimension")
        samples = _positive_int(samples, "samples")
        if str(np.dtype(dtype)) not in _DTYPES:
            raise InvalidTypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        handle = ctypes.c_void_p()
        check(lib.relusv_gmw_accumulator_create(dimension, samples, _seed(seed), _DTYPES[str(np.dtype(dtype))],
                                                ctypes.byref(handle)))
        self._native = NativeHandle(handle, lib.relusv_gmw_accumulator_free, "accumulator")

    @classmethod
    def from_bytes(cls, state: bytes) -> GMWAccumulator:
        """An accumulator restored from ``to_bytes()`` output.

        The library checks the state completely before allocating anything
        (size, CRC-32 checksum, every header field, limits on
        ``samples x dimension``, the extremes; see ``WidthAccumulatorState``),
        so corrupted or forged bytes raise ``InvalidInputError`` (or
        ``MemoryLimitError``) and never crash. States written by relusv 0.1
        (format version 1, without checksum) are still read.
        """
        state = bytes(state)
        handle = ctypes.c_void_p()
        check(lib.relusv_gmw_accumulator_import(state, len(state), ctypes.byref(handle)))
        self = cls.__new__(cls)
        self._native = NativeHandle(handle, lib.relusv_gmw_accumulator_free, "accumulator")
        return self

    def to_bytes(self) -> bytes:
        """The state as portable bytes (directions are re-derived from the seed)."""
        size = ctypes.c_size_t()
        with self._borrow() as h:
            check(lib.relusv_gmw_accumulator_state_size(h, ctypes.byref(size)))
            buffer = ctypes.create_string_buffer(size.value)
            check(lib.relusv_gmw_accumulator_export(h, buffer, size.value))
        return buffer.raw

    # Pickling stores ``to_bytes()``. As with any pickle, unpickling data from
    # an untrusted source can run arbitrary code (pickle itself, not relusv, is
    # the risk): exchange ``to_bytes()`` output and ``from_bytes`` instead.
    def __getstate__(self) -> bytes:
        return self.to_bytes()

    def __setstate__(self, state: bytes) -> None:
        restored = GMWAccumulator.from_bytes(state)
        self._native, restored._native = restored._native, None  # transferred: restored's __del__ frees nothing

    def _borrow(self):
        native = getattr(self, "_native", None)
        if native is None:
            raise InvalidInputError("the accumulator has been closed")
        return native.borrow()

    @property
    def closed(self) -> bool:
        native = getattr(self, "_native", None)
        return native is None or native.closed

    def close(self) -> None:
        """Frees the native state (also done when the object is collected).

        Safe while other threads are inside calls on this accumulator: they
        finish normally, the memory is freed when the last of them returns,
        and calls made after ``close`` raise ``InvalidInputError``.
        """
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()

    __del__ = close

    def __enter__(self) -> GMWAccumulator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _info(self) -> _native.AccumulatorInfo:
        info = _native.AccumulatorInfo()
        with self._borrow() as h:
            check(lib.relusv_gmw_accumulator_info_get(h, ctypes.byref(info)))
        return info

    @property
    def dimension(self) -> int:
        return int(self._info().dimension)

    @property
    def samples(self) -> int:
        return int(self._info().samples)

    @property
    def seed(self) -> int:
        return int(self._info().seed)

    @property
    def points(self) -> int:
        """Number of points added (including merged ones)."""
        return int(self._info().points)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32 if self._info().dtype == _native.FLOAT32 else np.float64)

    def __repr__(self) -> str:
        if self.closed:
            return "GMWAccumulator(<closed>)"
        i = self._info()
        return (f"GMWAccumulator(dimension={i.dimension}, samples={i.samples}, seed={i.seed}, "
                f"dtype='{self.dtype}', points={i.points})")

    def update(self, x: Any, progress: ProgressOption = False) -> GMWAccumulator:
        """Adds the rows of ``x`` (shape ``(N, ...)``, flattened to ``(N, dimension)``)."""
        a = _arrays.prepare(_arrays.as_points(x, dtype=self.dtype))
        m = _arrays.matrix(a)
        with self._borrow() as h, ProgressSession("gmw update", progress) as session:
            check(lib.relusv_gmw_accumulator_update(h, ctypes.byref(m), session.callback, None))
        return self

    def merge(self, other: GMWAccumulator) -> GMWAccumulator:
        """Adds the points seen by ``other`` (same dimension, samples, seed and dtype)."""
        if not isinstance(other, GMWAccumulator):
            raise InvalidTypeError(f"can only merge another GMWAccumulator, not {type(other).__name__}")
        with self._borrow() as h, other._borrow() as g:
            check(lib.relusv_gmw_accumulator_merge(h, g))
        return self

    @property
    def extremes(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the running per-direction ``(maxima, minima)``."""
        s = self.samples
        hi, hi_ptr = _arrays.double_buffer(s)
        lo, lo_ptr = _arrays.double_buffer(s)
        with self._borrow() as h:
            check(lib.relusv_gmw_accumulator_extremes(h, hi_ptr, lo_ptr))
        return hi, lo

    def merge_extremes(self, maxima: Any, minima: Any, points: int) -> GMWAccumulator:
        """Merges raw extremes of accumulators with the same directions.

        This is the all-reduce form: reduce every worker's ``extremes`` with
        MAX (maxima) and MIN (minima), sum their ``points``, and merge.
        """
        s = self.samples
        hi = np.ascontiguousarray(_arrays.as_float_array(maxima, "maxima", np.float64)).reshape(-1)
        lo = np.ascontiguousarray(_arrays.as_float_array(minima, "minima", np.float64)).reshape(-1)
        if hi.shape != (s,) or lo.shape != (s,):
            raise InvalidInputError(f"maxima and minima must each hold {s} values, got {hi.size} and {lo.size}")
        points = _validation.integer(points, "points")
        ptr = ctypes.POINTER(ctypes.c_double)
        with self._borrow() as h:
            check(lib.relusv_gmw_accumulator_merge_extremes(h, hi.ctypes.data_as(ptr), lo.ctypes.data_as(ptr), points))
        return self

    def estimate(self, trim: float = DEFAULT_TRIM, spherical: bool = False, return_details: bool = False):
        """The current width estimate; arguments as in ``relusv.gmw``."""
        info = self._info()
        widths, widths_ptr = _arrays.double_buffer(int(info.samples)) if return_details else (None, None)
        result = _native.WidthResult()
        trim = _trim(trim)
        with self._borrow() as h:
            check(lib.relusv_gmw_accumulator_estimate(h, trim, int(bool(spherical)), widths_ptr, ctypes.byref(result)))
        if not return_details:
            return result.estimate
        return WidthEstimate._from_native(result, trim, bool(spherical), int(info.seed), widths)
