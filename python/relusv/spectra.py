"""Linear and ReLU singular values of layers, and the Gaussian mean width of operators.

For a layer ``phi(x) = ReLU(W x + b)`` (``W`` is ``m x n``, out x in) and a
set of points ``X`` (rows), the k-th ReLU singular value over the data is
(MATH.md sections 1-3)

    s_k(phi; X) = min_{rank L <= k} max_{x in X} ||ReLU(W x + b) - ReLU(L x + b)||.

Any ``L`` of rank ``<= k`` gives an upper bound once its maximum error is
evaluated exactly over all points; ``relu_singular_values`` returns, for each
``k``, the smallest such certified bound it found (see its docstring for the
candidates and the stopping rule), next to the linear ``sigma_k`` and the
truncated-SVD bound ``t_k``.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from . import _arrays, _native, _validation
from ._native import check, lib
from ._progress import ProgressOption, ProgressSession
from .errors import InvalidInputError, InvalidTypeError
from .width import _positive_int, _seed


def _defaults() -> _native.ReluSVOptions:
    options = _native.ReluSVOptions()
    lib.relusv_relu_sv_options_init(ctypes.byref(options), ctypes.sizeof(options))
    return options


_DEFAULTS = _defaults()
DEFAULT_SPHERE_POINTS = int(_DEFAULTS.sphere_points)
"""Points of the unit-sphere sample used when ``X`` is not given (the library's default)."""
DEFAULT_MAX_STEPS = int(_DEFAULTS.max_steps)
"""Adam steps per fitted ``k`` (the library's default)."""
DEFAULT_LEARNING_RATE = float(_DEFAULTS.learning_rate)
DEFAULT_BATCH_SIZE = int(_DEFAULTS.batch_size)

_SOURCE_NAMES = {}
for _code in range(64):
    _name = lib.relusv_bound_source_name(_code)
    if _name is None:
        break
    _SOURCE_NAMES[_code] = _name.decode()


def _weight(W: Any) -> np.ndarray:
    a = _arrays.as_float_array(W, "W")
    if a.ndim != 2:
        raise InvalidInputError(f"W must be a 2-D matrix (out x in), got shape {a.shape}")
    return _arrays.prepare(a)


def _bias(b: Any) -> Optional[np.ndarray]:
    if b is None:
        return None
    a = _arrays.as_float_array(b, "b")
    if a.ndim != 1:
        raise InvalidInputError(f"b must be a 1-D vector of length m (W's rows), got shape {a.shape}")
    return _arrays.prepare(a.reshape(1, -1))


def _points(X: Any) -> Optional[np.ndarray]:
    if X is None:
        return None
    return _arrays.prepare(_arrays.as_points(X, "X"))


def _ref(m: Optional[_native.Matrix]):
    return ctypes.byref(m) if m is not None else None


def _mat(a: Optional[np.ndarray]) -> Optional[_native.Matrix]:
    return _arrays.matrix(a) if a is not None else None


def singular_values(W: Any, tolerance: float = 0.0) -> np.ndarray:
    """Singular values ``sigma_0 >= sigma_1 >= ...`` of ``W`` by LAPACK's divide-and-conquer ``?gesdd``.

    The linear spectrum that the ReLU singular values are compared with
    (MATH.md section 2: ``s_k <= t_k <= sigma_k max ||x||``).

    Parameters
    ----------
    W : array_like, shape (m, n)
        The matrix (a layer's weight, ``out x in`` as in PyTorch; NumPy or a
        torch tensor). Computed in its precision: float32 stays float32, other
        real dtypes are computed in float64.
    tolerance : float, optional
        The absolute accuracy the values are needed to, relative to
        ``sigma_0`` (default 0: LAPACK's SVD, ``O(eps sigma_0)``). From
        ``eps**0.75`` on (``eps`` of the precision computed in: ``1.8e-12``
        in float64) the values may come from the ``p x p`` Gram matrix
        (``p = min(m, n)``) where it resolves them, i.e. where its smallest
        eigenvalue is at least ``sqrt(eps)`` times its largest: each value
        is then within about ``eps**0.75 * sigma_0`` of the SVD's, in about
        a third of the time (a ``4096 x 25088`` or ``4096 x 4096`` matrix); elsewhere the SVD (``docs/engine.md``, "Values from the Gram
        matrix"). ``relusv.torch.analyze`` passes the epsilon of the weights'
        stored precision (float32: ``1.19e-7``, the accuracy of an SVD in that
        precision).

    Returns
    -------
    numpy.ndarray, shape (min(m, n),)
        The singular values, descending, with ``W``'s float dtype.

    Raises
    ------
    InvalidInputError
        For a ``W`` that is not 2-D, is empty or holds NaN or infinity.
    InvalidTypeError
        For complex or non-numeric entries, or a model instead of its weight.
    ComputationError
        When LAPACK does not converge.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> relusv.singular_values(np.diag([3.0, -4.0, 0.5]))
    array([4. , 3. , 0.5])
    """
    w = _weight(W)
    tol = _tolerance_argument(tolerance)
    p = min(w.shape)
    out, ptr = _arrays.double_buffer(p)
    m = _arrays.matrix(w)
    check(lib.relusv_singular_values_tol(ctypes.byref(m), tol, ptr))
    return out.astype(w.dtype, copy=False)


def _tolerance_argument(tolerance: Any) -> float:
    """The ``tolerance`` of ``singular_values`` and ``WeightSVD``: a finite, non-negative real."""
    tol = _validation.finite_real(tolerance, "tolerance")
    if tol < 0:
        raise InvalidInputError(f"tolerance must be non-negative, got {tol}")
    return tol


def numerical_rank(A: Any) -> int:
    """The numerical rank of ``A``: the number of singular values above ``max(m, n) * eps * sigma_0``.

    ``eps`` is the unit roundoff of ``A``'s precision (NumPy's ``matrix_rank``
    convention). The library's one rule for ranks: ``rank(W)`` of a layer and
    ``rank(X W^T)``, from which the ReLU singular values of a layer over the
    points ``X`` vanish exactly (MATH.md section 2).

    Parameters
    ----------
    A : array_like, shape (m, n)
        The matrix, as for ``singular_values``.

    Returns
    -------
    int
        The numerical rank, ``0 <= rank <= min(m, n)``.

    Raises
    ------
    InvalidInputError
        For an ``A`` that is not 2-D, is empty or holds NaN or infinity.
    InvalidTypeError
        For complex or non-numeric entries.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> relusv.numerical_rank(np.outer([1.0, 2.0, 3.0], [1.0, -1.0]))
    1
    """
    w = _weight(A)
    m = _arrays.matrix(w)
    rank = ctypes.c_size_t()
    check(lib.relusv_numerical_rank(ctypes.byref(m), ctypes.byref(rank)))
    return int(rank.value)


def rank_of_spectrum(sigma: Any, shape: Tuple[int, int], dtype: Any) -> int:
    """``numerical_rank``'s rule applied to singular values already computed.

    Parameters
    ----------
    sigma : array_like, shape (p,)
        Descending, finite, nonnegative singular values, ``p <= min(shape)``.
    shape : (int, int)
        ``(m, n)`` of the matrix they belong to.
    dtype : numpy or torch dtype
        The matrix's stored precision; ``eps`` is the machine epsilon of the
        precision relusv computes it in (``machine_epsilon``): float32's for
        float32, float16 and bfloat16 (their rounding, about ``1e-3`` of the
        entries, counts as rank: it is part of the stored matrix), float64's
        for every other type.

    Returns
    -------
    int
        The number of values above ``max(m, n) * eps * sigma_0``.

    Raises
    ------
    InvalidInputError
        For values that are not finite, negative, not descending, or more than ``min(shape)``.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> relusv.rank_of_spectrum([1.0, 1e-3, 1e-9], (3, 3), np.float16)
    2
    """
    values = np.ascontiguousarray(np.asarray(sigma, dtype=np.float64).reshape(-1))
    rows, columns = (int(v) for v in shape)
    rank = ctypes.c_size_t()
    check(lib.relusv_rank_of_spectrum_eps(values.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), values.size,
                                          rows, columns, machine_epsilon(dtype), ctypes.byref(rank)))
    return int(rank.value)


def machine_epsilon(dtype: Any) -> float:
    """The machine epsilon of the precision relusv computes a matrix stored as ``dtype`` in (the numerical-rank
    rule's ``eps``): float32's (``2^-23``) for float32 and the half precisions (float16, bfloat16), which are
    computed in float32 or wider; float64's (``2^-52``) for float64 and every other type (NumPy or torch dtypes).

    Raises
    ------
    InvalidTypeError
        For something that is not a NumPy or torch dtype.
    """
    if hasattr(dtype, "is_floating_point") and not isinstance(dtype, (np.dtype, type)):   # a torch.dtype
        import torch

        narrow = dtype.is_floating_point and torch.finfo(dtype).bits <= 32
    else:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise InvalidTypeError(f"dtype must be a NumPy or torch dtype, got {dtype!r}") from None
        narrow = dt.kind == "f" and dt.itemsize <= 4
    return float(np.finfo(np.float32 if narrow else np.float64).eps)


def truncated_svd(W: Any, rank: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Factors ``(U, s, Vt)`` of the rank-``rank`` truncated SVD ``W_r = U diag(s) Vt``.

    By Eckart-Young ``W_r`` is a best rank-``r`` approximation in every
    unitarily invariant norm; its ReLU error is ``t_k`` of MATH.md section 2.

    Parameters
    ----------
    W : array_like, shape (m, n)
        The matrix, as for ``singular_values``.
    rank : int
        ``r`` in ``[0, min(m, n)]`` (0 gives empty factors).

    Returns
    -------
    U : numpy.ndarray, shape (m, r)
    s : numpy.ndarray, shape (r,)
        The ``r`` largest singular values, descending.
    Vt : numpy.ndarray, shape (r, n)
        All three with ``W``'s float dtype.

    Raises
    ------
    InvalidInputError
        For ``rank`` out of range and for an invalid ``W`` (as for
        ``singular_values``).

    Examples
    --------
    >>> import numpy as np, relusv
    >>> U, s, Vt = relusv.truncated_svd(np.diag([3.0, 1.0]), 1)
    >>> U @ np.diag(s) @ Vt
    array([[3., 0.],
           [0., 0.]])
    """
    w = _weight(W)
    r = _validation.integer(rank, "rank", 0, min(w.shape))  # before NumPy sizes buffers by it
    rows, cols = w.shape
    u, up = _arrays.double_buffer(rows * r)
    s, sp = _arrays.double_buffer(r)
    vt, vp = _arrays.double_buffer(r * cols)
    m = _arrays.matrix(w)
    check(lib.relusv_truncated_svd(ctypes.byref(m), r, up, sp, vp))
    dt = w.dtype
    return u.reshape(rows, r).astype(dt, copy=False), s.astype(dt, copy=False), vt.reshape(r, cols).astype(dt, copy=False)


@dataclass(frozen=True)
class ReluSpectrum:
    """Certified upper bounds of the ReLU singular values of a layer, per ``k``.

    Arrays are aligned with ``ks`` (the order requested). For every ``k``:
    ``sigma`` is the linear ``sigma_k(W)``; ``truncation_bound`` is
    ``t_k = max_x ||phi(x) - ReLU(W_k x + b)||``; ``bound`` is the smallest
    certified bound found (always ``<= t_k``; non-increasing in ``k``);
    ``source`` names the candidate that achieved it (``"exact"`` at k = 0,
    ``"zero"`` where the evaluated error is exactly 0, ``"svd"``, ``"rrr"``
    (reduced-rank regression), ``"weighted-rrr"`` (its Lawson-reweighted
    variant), ``"data-projection"``, ``"fit"`` (least
    squares), ``"refine"`` (minimax refinement), ``"previous-k"`` (a smaller
    k's approximant), ``"extended"`` (a smaller k's approximant plus the next
    singular pairs)); ``steps`` and ``seconds`` are the optimisation effort.
    ``data_max_norm`` is ``max ||x||``, so ``t_k <= sigma_k * data_max_norm``.
    ``factors`` holds ``(U, V)`` with ``L = U @ V`` per ``k`` when requested.
    """

    ks: np.ndarray
    sigma: np.ndarray
    truncation_bound: np.ndarray
    bound: np.ndarray
    source: List[str]
    steps: np.ndarray
    seconds: np.ndarray
    data_max_norm: float
    points: int = 0
    fit_stride: int = 1
    dtype: str = "float64"
    factors: Optional[List[Tuple[np.ndarray, np.ndarray]]] = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ks)

    def __repr__(self) -> str:
        if len(self.ks) == 0:
            return "ReluSpectrum(no ranks)"
        first = ", ".join(f"k={int(k)}: {b:.4g} ({s})" for k, b, s in
                          list(zip(self.ks, self.bound, self.source))[:3])
        more = f", ... {len(self.ks) - 3} more" if len(self.ks) > 3 else ""
        return (f"ReluSpectrum({len(self.ks)} ranks over {self.points} points, {self.dtype}: {first}{more}; "
                f"max ||x|| {self.data_max_norm:.4g})")

    def to_dict(self) -> dict:
        """A JSON-ready dictionary (lists of numbers; factors left out)."""
        return {
            "ks": [int(k) for k in self.ks],
            "sigma": [float(v) for v in self.sigma],
            "truncation_bound": [float(v) for v in self.truncation_bound],
            "bound": [float(v) for v in self.bound],
            "source": list(self.source),
            "steps": [int(v) for v in self.steps],
            "seconds": [float(v) for v in self.seconds],
            "data_max_norm": float(self.data_max_norm),
            "points": int(self.points),
            "fit_stride": int(self.fit_stride),
            "dtype": self.dtype,
        }


def _ks(ks: Any) -> Optional[np.ndarray]:
    if ks is None:
        return None
    if isinstance(ks, (int, np.integer)) and not isinstance(ks, (bool, np.bool_)):
        ks = [ks]
    a = np.asarray(ks)
    if a.ndim != 1:
        raise InvalidInputError(f"ks must be a sequence of integers, got shape {a.shape}")
    if a.size == 0:
        raise InvalidInputError("ks is empty")
    if a.dtype.kind not in "iu":
        raise InvalidTypeError(f"ks must hold integers, got dtype {a.dtype}")
    if (a < 0).any():
        raise InvalidInputError(f"k = {int(a[a < 0][0])} is out of range: k must be non-negative")
    return np.ascontiguousarray(a, dtype=np.uint64)


class WeightSVD:
    """The thin SVD of a weight ``W``, computed once and shared by several bound curves of that layer.

    ``relu_singular_values(W, b, X, ..., weight_svd=svd)`` then skips its own SVD of ``W`` (the costliest
    step of a wide layer: a ``4096 x 25088`` classifier's takes minutes) and reports the same values bit for
    bit (a layer evaluated scaled, see "Certified at every scale" there, takes the SVD of its scaled weight
    instead). The SVD is computed as the curves compute it (LAPACK ``?gesdd`` in ``W``'s precision with OpenBLAS
    at one thread; a matrix of independent blocks, such as a grouped convolution's kernel matrix, from its
    blocks' SVDs). A curve checks that it is the SVD of its own ``W`` (shape and a 64-bit hash of the entries)
    in the precision it computes in; every bound stays the exact error of its factors whatever the SVD.

    With ``vectors=r`` it holds every singular value but the singular vectors of the ``r`` largest only
    (LAPACK ``?gebrd`` once, ``?bdsdc`` for the values, ``?bdsvdx`` for those pairs): enough for curves whose
    ``k`` stay at or below ``r`` (a curve over ``N`` points has ``k < rank(X W^T) <= N``), at less than half the
    cost of the whole thin SVD of a wide layer. Its values agree with the full SVD's to rounding and a curve
    given it reports bounds that agree with its own to rounding (each still the exact error of its factors);
    a curve asking a larger ``k`` raises.

    Parameters
    ----------
    W : array_like (m, n)
        The weight; float32 gives a float32 SVD (for curves computed in float32: ``W``, ``b`` and ``X`` all
        float32), anything else float64.
    vectors : int, optional
        Pairs of singular vectors to keep, the largest first; None (default): all ``min(m, n)``.
    tolerance : float, optional
        With ``vectors`` below ``min(m, n)``: the accuracy the values are needed
        to, as in ``singular_values`` (default 0, the SVD); where the Gram
        matrix serves, the values and the kept pairs come from it (its top
        eigenvectors, and ``W``'s other side by one product), about a third of
        the time on a ``4096 x 25088`` layer. Bounds stay the exact errors of
        their factors.

    Attributes
    ----------
    shape : tuple
        ``(m, n)``.
    values : numpy.ndarray
        The ``min(m, n)`` singular values, descending.
    vectors : int
        The pairs of singular vectors held.

    Methods
    -------
    factors(count=None)
        ``(U, s, Vt)`` of the first ``count`` pairs (default: all held), float64.
    close()
        Frees the factors (also a context manager).

    Raises
    ------
    InvalidInputError
        ``W`` not a non-empty 2-D matrix, or with NaN or infinity.
    MemoryLimitError
        The factors would exceed ``relusv.memory_limit()`` (nothing is allocated).

    Examples
    --------
    >>> import numpy as np, relusv
    >>> rng = np.random.default_rng(0)
    >>> W, b = rng.normal(size=(30, 20)), rng.normal(size=30)
    >>> with relusv.WeightSVD(W) as svd:
    ...     a = relusv.relu_singular_values(W, b, rng.normal(size=(100, 20)), [0, 5], weight_svd=svd)
    ...     c = relusv.relu_singular_values(W, b, rng.normal(size=(80, 20)), [0, 5], weight_svd=svd)
    >>> bool(np.allclose(svd.values, np.linalg.svd(W, compute_uv=False)))
    True
    """

    def __init__(self, W: Any, vectors: Optional[int] = None, tolerance: float = 0.0):
        from ._handle import NativeHandle

        w = _weight(W)
        count = None if vectors is None else _validation.integer(vectors, "vectors")
        tol = _tolerance_argument(tolerance)
        handle = ctypes.c_void_p()
        if count is None:
            check(lib.relusv_weight_svd_create(ctypes.byref(_arrays.matrix(w)), ctypes.byref(handle)))
        else:
            check(lib.relusv_weight_svd_create_tol(ctypes.byref(_arrays.matrix(w)), count, tol, ctypes.byref(handle)))
        self._native = NativeHandle(handle, lib.relusv_weight_svd_free, "weight SVD")
        self.shape: Tuple[int, int] = (int(w.shape[0]), int(w.shape[1]))
        values, pointer = _arrays.double_buffer(min(self.shape))
        held = ctypes.c_size_t()
        with self._native.borrow() as h:
            check(lib.relusv_weight_svd_values(h, pointer, values.size))
            check(lib.relusv_weight_svd_vectors(h, ctypes.byref(held)))
        self.values: np.ndarray = values
        self.vectors: int = int(held.value)

    def factors(self, count: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, s, Vt)`` of the first ``count`` pairs (default: all ``vectors`` held), float64: ``U``
        ``(m, count)``, ``s`` ``(count,)``, ``Vt`` ``(count, n)``, so that ``(U * s) @ Vt`` is the rank-``count``
        truncation of ``W`` these factors give."""
        count = self.vectors if count is None else _validation.integer(count, "count", 0, self.vectors)
        m, n = self.shape
        u = np.empty((m, count))
        vt = np.empty((count, n))
        with self._native.borrow() as h:
            check(lib.relusv_weight_svd_factors(h, u.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
                                                vt.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), count))
        return u, self.values[:count].copy(), vt

    @property
    def closed(self) -> bool:
        native = getattr(self, "_native", None)
        return native is None or native.closed

    def close(self) -> None:
        """Frees the factors (also done when the object is collected); later curves given it raise."""
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()

    __del__ = close

    def __enter__(self) -> WeightSVD:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def relu_singular_values(
    W: Any,
    b: Any = None,
    X: Any = None,
    ks: Optional[Sequence[int]] = None,
    *,
    leaky_slope: float = 0.0,
    sphere_points: int = DEFAULT_SPHERE_POINTS,
    seed: Optional[int] = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    time_budget: Optional[float] = None,
    threads: Optional[int] = None,
    refine: bool = True,
    return_factors: bool = False,
    progress: ProgressOption = None,
    fit_stride: Optional[int] = None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    group_size: int = 1,
    fit_points: Optional[int] = None,
    weight_svd: Optional[WeightSVD] = None,
) -> ReluSpectrum:
    """Certified upper bounds of the ReLU singular values of ``phi(x) = ReLU(W x + b)``.

    For each ``k``, ``bound_k >= s_k(phi; X)`` is the maximum error
    ``max_i ||phi(x_i) - ReLU(L x_i + b)||``, evaluated exactly over all
    points, of the best rank-``<= k`` matrix ``L`` found among the candidates
    (MATH.md sections 2-3; ``source`` names the winner):

    * ``k = 0``: the exact value ``max_x ||phi(x) - ReLU(b)||`` (``"exact"``);
    * the truncated SVD ``W_k`` (``"svd"``; its value is ``truncation_bound``);
    * reduced-rank regression ``Q_k Q_k^T W``, ``Q`` the left singular vectors
      of ``W X^T`` (``"rrr"``; ``L X^T`` is the truncation of ``W X^T``, so the
      error vanishes once ``k >= rank(X W^T)``), and the data projection
      ``W V_k V_k^T``, ``V`` the right singular vectors of ``X``
      (``"data-projection"``); also the reduced-rank regression with the
      points reweighted by Lawson's rule (``"weighted-rrr"``): at every ``k``
      where its rounds are cheap (``5 K N m min(N, m) <= 1e10`` for ``K`` values
      of ``k``; 5 rounds, weights times ``e / max e``, each round's basis one
      power step from the previous round's), else by bands of at
      most 128 ``k``, narrower where affordable (4 rounds at each band's
      middle ``k``, weights times ``(e / max e)^2``, the band's nested family
      evaluated at every ``k`` of the band);
    * the approximant of a smaller requested ``k`` (``"previous-k"``, so the
      curve is monotone) and that approximant plus the next singular pairs of
      ``W`` (``"extended"``);
    * every evaluated iterate of Adam fits (``"fit"``: least squares, MATH.md
      section 3; ``"refine"``: minimax refinement on the smooth maximum
      ``sum_i e_i^(2q)`` over the points of largest error, ``q`` doubled from 2
      to 32) from a cold start (the best of ``W_k`` and the data-aware
      candidates) and from a warm start (the previous best extended); on a
      curve well below the work budget (default ``max_steps``) also from the
      weighted regression.

    ``"zero"`` marks a value that is exactly 0 as evaluated. The Adam step is
    relative to the start factors' entries (never to the error left); the
    first 10 steps are tried at 1, 1/4 and 1/16 of it; an evaluation more than
    5 % above the best halves the step. Stopping rule of a fit: the exact
    bound is evaluated every 10 steps; least squares hands over to refinement
    after 2 evaluations without a relative improvement of 1e-3 (on a curve
    below the work budget with ``max_steps`` at its default or above: the cap
    and this patience raised up to 4x, and from 2x on judged by the
    least-squares loss instead of the bound); refinement
    doubles ``q`` after 2 and, at ``q = 32``, halves the step (twice) after 3;
    a fit also ends at ``max_steps`` or its share of ``time_budget``. Least
    squares runs on all rows when ``N <= 4096``, else on mini-batches.

    Parameters
    ----------
    W : array_like (m, n)
        The weight (out x in, as ``nn.Linear.weight``).
    b : array_like (m,), optional
        The bias (default zero); the approximant keeps the same bias.
    X : array_like (N, n), optional
        The points (rows). Default: ``sphere_points`` points drawn uniformly
        from the unit sphere with ``seed``, plus the unit vectors ``±v_j``
        (right singular vectors of ``W``), where the layer is largest. With
        ``b = None`` this estimates the ReLU singular values over the unit
        ball (MATH.md section 1): the bounds hold over the sample, and values
        over a sample approach the suprema over the ball from below.
    ks : sequence of int, optional
        Which ``k`` (each in ``[0, min(m, n) - 1]``, no repeats); default all.
    leaky_slope : float in [0, 1)
        Slope of the leaky ReLU for negative inputs (0: ReLU).
    seed : int, optional
        Seeds the sphere sample and the mini-batch order (None: 0).
    max_steps : int
        Cap of Adam steps per fit (a cold-start fit per fitted ``k``, and a
        warm-start one where it can pay); 0 evaluates the candidates only.
        Without ``fit_stride``, a job above the engine's work budget (about
        4.25e11 flops for the whole curve) gets a lower cap, down to 300, then
        a stride; a job well below it gets a higher one when ``max_steps`` is
        at the default or above (up to 4x, and a third fit per ``k``, from the
        weighted regression), so ``steps`` of a ``k`` may exceed ``max_steps``
        times its starts (docs/engine.md, "Budgets"). A lower ``max_steps``
        is kept as given.
    time_budget : float, optional
        Seconds for the fits, shared across ``k`` by their cost. It sets the
        work budget both ways: a short budget lowers the effort, a generous
        one raises it as the work budget's room does (whatever ``max_steps``)
        and also the refinement's patience and step halvings (up to 4x).
    threads : int, optional
        Threads across ``k`` (default: one per core). The whole call runs with
        OpenBLAS at one thread, so every value (bounds, the exact ``k = 0``
        included, ``truncation_bound``, ``sigma``, factors) is bit-identical
        whatever ``threads``, ``OPENBLAS_NUM_THREADS`` and concurrent calls.
    refine : bool
        Run the minimax refinement after the least-squares phase.
    return_factors : bool
        Keep ``(U, V)`` with ``L = U @ V`` for every ``k`` (float64).
    progress : bool, callable or None
        Progress bar control (see ``relusv.ProgressOption``); a callable
        ``f(done, total)`` returning True cancels (``CancelledError``).
    fit_stride : int, optional
        Fit every ``fit_stride``-th requested ``k`` and every ``k`` below it;
        default: 1 unless the estimated work is large, then a power of two (the
        other ``k`` take the svd, extended and previous-k candidates). The value used is reported
        in the result.
    learning_rate, batch_size
        Adam step relative to the RMS entry of each start factor, and the
        mini-batch size of the least-squares phase (used when ``N > 4096``).
    group_size : int
        ``P >= 1``: every ``P`` consecutive rows of ``X`` are one point whose
        error is the root-sum-square of its rows' errors (MATH.md section 9:
        the patches of one image of a convolution); ``N`` must be a multiple
        of ``P``. 1 (default) is the fully connected layer.
    fit_points : int, optional
        A fit runs on at most this many points (groups), those of largest
        error at its start, when there are more; its result is certified over
        all points, and a subset fit that ends no lower over all points than
        its start is repeated on all points. Default: the library's (2048); 0:
        all points. On large
        ``N`` all points give lower bounds at high ``k`` for more work per step
        (bench/RESULTS.md, "Large layer"): e.g. ``ks=[884], fit_points=0,
        time_budget=600``.
    weight_svd : WeightSVD, optional
        The SVD of this ``W``, made once for several curves of the layer
        (over different points): the call skips its own SVD and gives the
        same values (with ``WeightSVD(W, vectors=r)``, values that agree with
        them to rounding, and ``k`` at most ``r``, else ``InvalidInputError``).
        A ``WeightSVD`` of another matrix raises ``InvalidInputError``, one of
        another precision than the call computes in ``InvalidTypeError``.

    Returns
    -------
    ReluSpectrum

    Precision: float32 when ``W``, ``b`` and ``X`` are all float32, otherwise
    float64. Every bound is the float64 maximum error of the returned factors:
    in float32 every point whose float32 error could reach the maximum, by the
    worst-case rounding bound of its dot products, is recomputed in float64
    (exact at the rounding level of float64; slow for large float32 layers
    with bounds near the rounding level, where float64 inputs are faster).
    Certified at every scale: a layer whose pre-activations are tiny (down to
    the smallest normal numbers) or huge is evaluated scaled by a power of
    two, where no squared error underflows or overflows, and its bounds scaled
    back, rounded up; bounds beyond the range of float64 raise
    ``InvalidInputError`` (``RELUSV_ERROR_NONFINITE``).

    Raises
    ------
    InvalidInputError
        For shapes of ``W``, ``b``, ``X`` that do not fit, ``k`` out of range
        or repeated, NaN or infinity, empty data, options out of range;
        ``RELUSV_ERROR_NONFINITE`` for bounds beyond the range of float64.
    InvalidTypeError
        For complex or non-numeric input, or a model instead of its weight
        (use ``relusv.torch.relu_singular_values`` for a module).
    MemoryLimitError
        When the request would exceed ``relusv.memory_limit()`` (nothing is
        allocated).
    CancelledError
        When a callable ``progress`` asked to stop (Ctrl-C raises
        ``KeyboardInterrupt``).

    Examples
    --------
    >>> import numpy as np, relusv
    >>> rng = np.random.default_rng(0)
    >>> W, b, X = rng.normal(size=(20, 10)), rng.normal(size=20), rng.normal(size=(300, 10))
    >>> r = relusv.relu_singular_values(W, b, X, ks=[0, 3, 9], max_steps=50)
    >>> bool(np.all(r.bound <= r.truncation_bound * (1 + 1e-12)))
    True
    >>> r.source[0]
    'exact'
    """
    w = _weight(W)
    bias = _bias(b)
    x = _points(X)
    k_array = _ks(ks)
    options = _defaults()
    options.leaky_slope = _validation.real(leaky_slope, "leaky_slope")
    options.seed = _seed(seed)
    options.sphere_points = _validation.integer(sphere_points, "sphere_points", 0, _validation.MAX_UINT64)
    options.max_steps = _validation.integer(max_steps, "max_steps", 0, _validation.MAX_UINT64)
    if time_budget is not None:
        time_budget = _validation.real(time_budget, "time_budget")
        if not math.isfinite(time_budget) or time_budget <= 0:
            raise InvalidInputError(f"time_budget must be a positive number of seconds, got {time_budget}")
        options.time_budget = time_budget
    options.threads = 0 if threads is None else _positive_int(threads, "threads")
    options.refine = int(bool(refine))
    options.keep_factors = int(bool(return_factors))
    options.fit_stride = 0 if fit_stride is None else _positive_int(fit_stride, "fit_stride")
    options.learning_rate = _validation.real(learning_rate, "learning_rate")
    # Ranges (sphere_points, batch_size, group_size against X, ...) are the library's checks.
    options.batch_size = _validation.integer(batch_size, "batch_size", 0, _validation.MAX_UINT64)
    options.group_size = _validation.integer(group_size, "group_size", 0, _validation.MAX_UINT64)
    if fit_points is not None:
        options.fit_points = _validation.integer(fit_points, "fit_points", 0, _validation.MAX_UINT64)

    if weight_svd is not None and not isinstance(weight_svd, WeightSVD):
        raise InvalidTypeError(f"weight_svd must be a relusv.WeightSVD, got {type(weight_svd).__name__}")

    wm, bm, xm = _arrays.matrix(w), _mat(bias), _mat(x)
    ks_ptr = k_array.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)) if k_array is not None else None
    handle = ctypes.c_void_p()
    with contextlib.ExitStack() as stack:
        if weight_svd is not None:   # raises InvalidInputError once closed
            options.weight_svd = stack.enter_context(weight_svd._native.borrow())
        with ProgressSession("relu singular values", progress) as session:
            check(lib.relusv_relu_singular_values(
                ctypes.byref(wm), _ref(bm), _ref(xm), ks_ptr, 0 if k_array is None else len(k_array),
                ctypes.byref(options), ctypes.byref(handle), session.callback, None))
    try:
        info = _native.ReluSpectrumInfo()
        check(lib.relusv_relu_spectrum_info_get(handle, ctypes.byref(info)))
        count = int(info.count)
        entries = (_native.ReluSVEntry * count)()
        check(lib.relusv_relu_spectrum_entries(handle, entries))
        factors = None
        if return_factors:
            factors = []
            rows, cols = int(info.rows), int(info.cols)
            for i in range(count):
                r = ctypes.c_size_t()
                check(lib.relusv_relu_spectrum_factors(handle, i, ctypes.byref(r), None, None))
                u, up = _arrays.double_buffer(rows * r.value)
                v, vp = _arrays.double_buffer(r.value * cols)
                check(lib.relusv_relu_spectrum_factors(handle, i, ctypes.byref(r), up, vp))
                factors.append((u.reshape(rows, r.value), v.reshape(r.value, cols)))
    finally:
        lib.relusv_relu_spectrum_free(handle)

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.array([getattr(e, name) for e in entries], dtype=dtype)

    return ReluSpectrum(
        ks=column("k", np.int64),
        sigma=column("sigma", np.float64),
        truncation_bound=column("truncation_bound", np.float64),
        bound=column("bound", np.float64),
        source=[_SOURCE_NAMES.get(e.source, str(e.source)) for e in entries],
        steps=column("steps", np.int64),
        seconds=column("seconds", np.float64),
        data_max_norm=float(info.data_max_norm),
        points=int(info.points),
        fit_stride=int(info.fit_stride),
        dtype="float32" if info.dtype == _native.FLOAT32 else "float64",
        factors=factors,
    )


def relu_fit_gradient(W: Any, b: Any, X: Any, U: Any, V: Any, leaky_slope: float = 0.0
                      ) -> Tuple[float, np.ndarray, np.ndarray]:
    """The fit objective and its analytic gradient (MATH.md section 3).

    ``F(U, V) = sum_i ||ReLU(U V x_i + b) - ReLU(W x_i + b)||^2`` over the rows
    of ``X``; returns ``(F, dF/dU, dF/dV)`` as computed by the engine's Adam
    steps (for testing and for custom optimisers). ``U`` is ``m x k``, ``V``
    is ``k x n`` with ``k >= 1``.

    Experimental (the experimental section of relusv.h): its signature and
    meaning may change in any minor version. A loss or gradient beyond the
    range of the precision raises ``InvalidInputError``
    (``RELUSV_ERROR_NONFINITE``), never returns inf or NaN.

    Parameters
    ----------
    W, b, X
        The layer ``(m, n)``, its bias ``(m,)`` (None for zero) and the points
        ``(N, n)``, as for ``relu_singular_values``.
    U, V : array_like
        The factors of the approximant ``L = U V``.
    leaky_slope : float
        Slope of the activation below 0 (0 for ReLU).

    Returns
    -------
    F : float
        The objective.
    dU, dV : numpy.ndarray
        Its gradient with respect to ``U`` and ``V``.

    Raises
    ------
    InvalidInputError
        For shapes that do not fit (``U V`` must be ``m x n``), NaN or
        infinity, empty data; ``RELUSV_ERROR_NONFINITE`` for a loss or
        gradient beyond the range of the precision.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> rng = np.random.default_rng(0)
    >>> W, X = rng.normal(size=(4, 3)), rng.normal(size=(50, 3))
    >>> F, dU, dV = relusv.relu_fit_gradient(W, None, X, W, np.eye(3))   # L = W: no error
    >>> F, dU.shape, dV.shape
    (0.0, (4, 3), (3, 3))
    """
    w, bias, x = _weight(W), _bias(b), _points(_validation.required(X, "X", "the points (rows)"))
    u = _arrays.prepare(_arrays.as_points(U, "U"))
    v = _arrays.prepare(_arrays.as_points(V, "V"))
    loss = ctypes.c_double()
    gu, gup = _arrays.double_buffer(u.size)
    gv, gvp = _arrays.double_buffer(v.size)
    wm, bm, xm, um, vm = _arrays.matrix(w), _mat(bias), _arrays.matrix(x), _arrays.matrix(u), _arrays.matrix(v)
    check(lib.relusv_relu_fit_gradient(ctypes.byref(wm), _ref(bm), ctypes.byref(xm), ctypes.byref(um),
                                       ctypes.byref(vm), float(leaky_slope), ctypes.byref(loss), gup, gvp))
    return loss.value, gu.reshape(u.shape), gv.reshape(v.shape)


@dataclass(frozen=True)
class OperatorWidth:
    """The Gaussian mean width of an operator (MATH.md section 5).

    ``estimate`` (with ``std_error``) is the Monte-Carlo value; ``lower`` and
    ``upper`` are certain bounds (``lower`` is None when none is known);
    ``norm`` is ``||W||_op`` for a linear map and ``max ||phi(x)||`` over the
    points for a ReLU layer.
    """

    estimate: float
    std_error: float
    lower: Optional[float]
    upper: float
    norm: float
    samples: int
    points: int
    relu: bool
    seed: int

    def __float__(self) -> float:
        return self.estimate


def operator_gmw(
    W: Any,
    b: Any = None,
    X: Any = None,
    *,
    relu: Optional[bool] = None,
    leaky_slope: float = 0.0,
    samples: int = 100,
    sphere_points: int = DEFAULT_SPHERE_POINTS,
    seed: Optional[int] = None,
    trim: float = 0.0,
    progress: ProgressOption = None,
) -> OperatorWidth:
    """Gaussian mean width of the linear map ``W`` or of the layer ``ReLU(W x + b)``.

    * Linear (``relu`` False; the default when ``b`` and ``X`` are None):
      ``w(W) = 2 E||W^T g||``, ``g ~ N(0, I_m)``, from ``samples`` directions,
      with the two-sided bound ``2 sqrt(2/pi) ||W||_F <= w(W) <= 2 ||W||_F``
      as ``lower`` / ``upper`` and ``norm = ||W||_op``.
    * ReLU layer (``relu=True``, implied when ``b`` or ``X`` is given): the
      width of the set ``phi(X)``, over ``X`` when given, else over
      ``sphere_points`` points of the unit sphere drawn with ``seed`` (an
      estimate from inside of ``w(phi(B))``); ``upper = 2 ||W||_F max ||x||``
      (Sudakov-Fernique, since ``phi`` is 1-Lipschitz after ``W``),
      ``lower`` is None and ``norm = max ||phi(x)||`` over the points.

    ``trim`` in [0, 0.5) trims the per-direction values at each end (0: the
    plain, unbiased mean; 0.1 is the paper's estimator of set widths).

    Parameters
    ----------
    W : array_like, shape (m, n)
        The weight.
    b, X : array_like, optional
        The bias ``(m,)`` and the points ``(N, n)`` of the ReLU layer.
    relu : bool, optional
        Measure ``ReLU(W x + b)`` instead of ``W`` (implied by ``b`` or ``X``).
    samples, seed, trim
        The estimator: directions, their seed (default 0), trimming.
    sphere_points : int
        Points of the unit sphere when ``relu`` and no ``X``.
    progress : bool, callable or None
        ``relusv.ProgressOption``.

    Returns
    -------
    OperatorWidth
        ``estimate``, ``std_error``, ``lower``, ``upper``, ``norm`` and the
        settings.

    Raises
    ------
    InvalidInputError
        For shapes that do not fit, NaN or infinity, empty data, options out
        of range.
    InvalidTypeError
        For complex or non-numeric input, or a model instead of its weight.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> w = relusv.operator_gmw(np.eye(50), samples=2000)   # 2 E||g|| for g in R^50: about 14.0
    >>> w.lower <= w.estimate <= w.upper
    True
    """
    if relu is None:
        relu = b is not None or X is not None
    w = _weight(W)
    bias = _bias(b)
    x = _points(X)
    samples = _positive_int(samples, "samples")
    sphere_points = _validation.integer(sphere_points, "sphere_points")  # positive when used: the library's check
    seed = _seed(seed)
    result = _native.OperatorWidthResult()
    wm, bm, xm = _arrays.matrix(w), _mat(bias), _mat(x)
    with ProgressSession("operator gmw", progress) as session:
        check(lib.relusv_operator_gmw(ctypes.byref(wm), _ref(bm), _ref(xm), int(bool(relu)), float(leaky_slope),
                                      samples, sphere_points, seed, float(trim), ctypes.byref(result),
                                      session.callback, None))
    lower = None if math.isnan(result.lower) else result.lower
    return OperatorWidth(result.estimate, result.std_error, lower, result.upper, result.norm, int(result.samples),
                         int(result.points), bool(relu), seed)
