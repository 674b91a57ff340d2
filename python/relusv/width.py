"""Gaussian mean width of finite sets (MATH.md section 4).

For a finite set K of points x_1..x_N in R^n (the rows of ``x``),

    w(K) = E_{g ~ N(0, I_n)} [ max_i <g, x_i> - min_i <g, x_i> ],

the expected width of K in a random Gaussian direction. relusv estimates it
from S Gaussian directions with one matrix product per block of points, which
gives exactly the value of the paper's linear programs over conv(K) - conv(K).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import _arrays, _native, _validation
from ._native import check, lib
from ._progress import ProgressOption, ProgressSession
from .errors import InvalidInputError

DEFAULT_SAMPLES = 100
DEFAULT_TRIM = 0.1
DEFAULT_SEED = _validation.DEFAULT_SEED
_MAX_SIZE = _validation.MAX_SIZE

# Older names of the checks, kept for the modules that import them from here.
_seed = _validation.seed
_positive_int = _validation.positive_int


def _trim(trim: Any) -> float:
    return _validation.real(trim, "trim")  # the range [0, 0.5) is checked by the library


@dataclass(frozen=True)
class WidthEstimate:
    """A Monte-Carlo estimate of a (Gaussian or spherical) mean width.

    ``estimate`` is the mean of the per-direction widths trimmed by ``trim`` at
    each end (SciPy ``trim_mean``), with its standard error ``std_error``
    (Tukey–McLaughlin); ``mean`` and ``mean_std_error`` are the untrimmed
    versions, unbiased for w(K). ``sample_widths`` holds the S values
    ``max_i <g_j, x_i> - min_i <g_j, x_i>`` when requested.
    """

    estimate: float
    std_error: float
    mean: float
    mean_std_error: float
    samples: int
    points: int
    trim: float
    spherical: bool
    seed: int
    sample_widths: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    def __float__(self) -> float:
        return self.estimate

    @classmethod
    def _from_native(cls, r: _native.WidthResult, trim: float, spherical: bool, seed: int,
                     widths: Optional[np.ndarray]) -> WidthEstimate:
        return cls(r.estimate, r.std_error, r.mean, r.mean_std_error, int(r.samples), int(r.points),
                   trim, spherical, seed, widths)


def gmw(x: Any, samples: int = DEFAULT_SAMPLES, seed: Optional[int] = None, trim: float = DEFAULT_TRIM,
        spherical: bool = False, return_details: bool = False, progress: ProgressOption = None):
    """Gaussian mean width of the set of rows of ``x``.

    ``w(K) = E_g [max_i <g, x_i> - min_i <g, x_i>]`` with ``g ~ N(0, I_n)``,
    estimated from ``samples`` directions aggregated by a mean trimmed by
    ``trim`` at each end (the paper's estimator: 100 samples, 10 % trimmed).
    The per-direction value is exactly the paper's linear program over
    ``conv(K) - conv(K)``, computed by one matrix product per block of points.

    Parameters
    ----------
    x : array_like, shape (N, ...)
        The points, one per row; trailing dimensions are flattened. NumPy
        arrays (float32 and float64 are used in place, in their own
        precision), nested lists, integer arrays and PyTorch tensors.
    samples : int, default 100
        Number of Gaussian directions S.
    seed : int or None, default None
        Seed of the directions; ``None`` means the fixed default seed 0, so
        results are reproducible. Equal seeds give equal directions in every
        process, whatever the batch sizes or thread count. The products
        ``<g_j, x_i>`` use OpenBLAS's threads: with another thread count,
        batch shape or concurrent calls a per-direction width may differ by at
        most ``2 n u ||g_j|| max_i ||x_i||`` (``u`` the unit roundoff: 2**-53
        for float64, 2**-24 for float32; relusv.h, Conventions).
    trim : float in [0, 0.5), default 0.1
        Fraction trimmed at each end. ``trim=0`` gives the plain mean, which
        is unbiased (the trimmed mean is not, for skewed per-sample values).
    spherical : bool, default False
        Use directions uniform on the sphere (``g / ||g||``): the spherical
        width ``w_s = w / c_n`` (see ``gaussian_to_spherical_factor``).
    return_details : bool, default False
        Return a ``WidthEstimate`` (with standard errors and the per-direction
        widths) instead of a float.
    progress : bool, callable or None
        Progress bar control; see ``relusv.ProgressOption``. Ctrl-C interrupts.

    Returns
    -------
    float or WidthEstimate

    Raises
    ------
    InvalidInputError
        For an empty set, NaN or infinity (naming the row and column), a 1-D
        array, a list of 2-D arrays (pass ``np.concatenate`` of them),
        ``samples`` or ``trim`` out of range.
    InvalidTypeError
        For complex or non-numeric data, or a model instead of its activations
        (use ``relusv.torch.analyze``).
    MemoryLimitError
        When ``samples x dimension`` directions exceed the memory limit.
    CancelledError
        When a callable ``progress`` asked to stop.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> cube = np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T   # 8 vertices
    >>> w = relusv.gmw(cube, samples=20000, trim=0)   # exact: 2 n sqrt(2/pi) = 4.787
    >>> abs(w - 4.787) < 0.05
    True
    """
    a = _arrays.prepare(_arrays.as_points(x))
    samples = _positive_int(samples, "samples")
    seed = _seed(seed)
    trim = _trim(trim)
    widths, widths_ptr = _arrays.double_buffer(samples) if return_details else (None, None)
    result = _native.WidthResult()
    m = _arrays.matrix(a)
    with ProgressSession("gmw", progress) as session:
        check(lib.relusv_gmw(ctypes.byref(m), samples, seed, trim, int(bool(spherical)), widths_ptr,
                             ctypes.byref(result), session.callback, None))
    if not return_details:
        return result.estimate
    return WidthEstimate._from_native(result, trim, bool(spherical), seed, widths)


def diameter(x: Any, progress: ProgressOption = None) -> float:
    """Exact diameter ``diam(K) = max_{i,j} ||x_i - x_j||`` of the rows of ``x``.

    Blocked Gram products, O(N^2 n) work and O(block * n) extra memory; the
    winning pair is re-measured directly, so the value is a true distance
    (MATH.md section 5, the denominator of the effective dimension). At every
    scale: the points are scaled by a power of two for the products and the
    re-measure scales its sum of squares, so distinct points down to the
    smallest normal numbers have a nonzero diameter.

    Parameters
    ----------
    x : array_like, shape (N, n) or (N, ...)
        The points as rows (NumPy of any real dtype, nested lists or torch
        tensors; trailing dimensions are flattened). float32 and float64 are
        read in place, in their own precision.
    progress : bool, callable or None
        ``relusv.ProgressOption``: ``None`` shows progress on a terminal or in
        a notebook after a second, ``False`` is silent.

    Returns
    -------
    float
        The largest distance between two rows (0 for a single point).

    Raises
    ------
    InvalidInputError
        For an empty set, NaN or infinity (naming the row and column), a 1-D
        array or a list of arrays; ``RELUSV_ERROR_NONFINITE`` for a diameter
        beyond the range of float64.
    InvalidTypeError
        For complex or non-numeric data, or a model instead of points.
    MemoryLimitError
        When the scratch memory would exceed ``relusv.memory_limit()``.

    Examples
    --------
    >>> import relusv
    >>> relusv.diameter([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    5.0
    """
    a = _arrays.prepare(_arrays.as_points(x))
    out = ctypes.c_double()
    m = _arrays.matrix(a)
    with ProgressSession("diameter", progress) as session:
        check(lib.relusv_diameter(ctypes.byref(m), ctypes.byref(out), session.callback, None))
    return out.value


def effective_dimension(x: Any, samples: int = DEFAULT_SAMPLES, seed: Optional[int] = None,
                        trim: float = DEFAULT_TRIM, progress: ProgressOption = None) -> float:
    """Effective dimension ``(w(K) / diam(K))^2`` of the rows of ``x`` (Vershynin).

    About ``d`` for the unit ball of a d-dimensional subspace; at most of
    order the ambient dimension.

    Parameters
    ----------
    x : array_like, shape (N, n)
        The points as rows (as for ``gmw``).
    samples, seed, trim
        The width's estimator, as for ``gmw`` (100 directions, seed 0, 10 %
        trimmed by default).
    progress : bool, callable or None
        ``relusv.ProgressOption``.

    Returns
    -------
    float
        ``(gmw(x) / diameter(x))^2``.

    Raises
    ------
    InvalidInputError
        When all points coincide (diameter 0), and for invalid points as in
        ``gmw``.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> g = np.random.default_rng(0).normal(size=(2000, 3))
    >>> x = (g / np.linalg.norm(g, axis=1, keepdims=True)) @ np.eye(3, 20)   # a 2-sphere in R^20
    >>> 2 < relusv.effective_dimension(x) < 3     # (E||g_3||)^2 = 8 / pi = 2.55
    True
    """
    d = diameter(x, progress=progress)
    if d == 0.0:
        raise InvalidInputError("all points of x coincide (diameter 0): the effective dimension is undefined")
    return (gmw(x, samples=samples, seed=seed, trim=trim, progress=progress) / d) ** 2


def gaussian_to_spherical_factor(n: int) -> float:
    """``c_n = E||g|| = sqrt(2) Gamma((n+1)/2) / Gamma(n/2)``, ``g ~ N(0, I_n)``.

    Lemma 13: ``w(K) = c_n * w_s(K)``. Accurate to a few ulps for every n (a
    ratio of Gamma values, then its asymptotic series); ``c_n ~ sqrt(n)``.

    Parameters
    ----------
    n : int
        The dimension, at least 1.

    Returns
    -------
    float
        ``c_n``, the factor between the Gaussian and the spherical width.

    Raises
    ------
    InvalidInputError
        For ``n < 1``.
    InvalidTypeError
        For a non-integer ``n``.

    Examples
    --------
    >>> import relusv
    >>> round(relusv.gaussian_to_spherical_factor(1) ** 2, 12)   # E|g| = sqrt(2 / pi)
    0.636619772368
    """
    n = _positive_int(n, "n")
    out = ctypes.c_double()
    check(lib.relusv_gaussian_to_spherical_factor(n, ctypes.byref(out)))
    return out.value
