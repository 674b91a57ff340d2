"""The operator norm ``||A_K||`` of a convolution with any padding, stride, dilation or groups (MATH.md section 9).

Exact where that is cheap, a certified bracket ``lower <= ||A_K|| <= upper`` otherwise:

* **Circular padding** keeping the input size (``2 padding = dilation (k - 1)``)
  with a stride dividing it: ``relusv.conv_singular_values`` gives the top
  singular value exactly (groups and strides included), no iteration.
* **1x1 kernels with zero padding** (any stride): every output pixel reads
  one input pixel or a padding zero, and distinct output pixels read distinct
  input pixels. Ordering coordinates by pixel, ``A_K = S (x) B`` with ``S`` a
  0/1 selection matrix (at most one 1 per row and per column, so
  ``||S|| = 1`` when some output pixel reads an input pixel) and ``B`` the
  block-diagonal matrix of the groups' ``(C_out/G) x (C_in/G)`` kernel
  matrices. Hence ``||A_K|| = ||B|| = max_g sigma_0(K_g)``: for ``G = 1`` the
  top singular value of the kernel matrix ``C_out x C_in``.
* **Small zero-padded operators** (``min(n_in, n_out) <= DENSE_MAX_SIDE`` and
  ``n_in n_out <= DENSE_MAX_ENTRIES``, ``n = C H W``): the dense matrix is
  assembled from the kernel taps; ``lower`` by Lanczos on its Gram matrix,
  ``upper`` certified by a Cholesky factorisation of ``mu I - G``
  (``_dense_bracket``), typically a relative gap of ``1e-8``. Here the torus
  bound below would be loose (small images are mostly border). With
  ``G > 1`` groups the operator is block diagonal over them and
  ``||A_K|| = max_g ||A_g||``: each group's block (smaller side at most
  ``DENSE_GROUP_SIDE``, ``G n_in n_out`` entries at most ``DENSE_MAX_ENTRIES``
  in all, ``n`` per group) bracketed the same way, all groups at once (a
  depthwise layer on a small image: one small block per channel).
* **Any other case**: a certified bracket.

  - ``lower = ||A_K y||`` for the unit Ritz vector ``y`` of (restarted, fully
    reorthogonalised) Lanczos on ``A_K^T A_K`` (``conv2d`` and its adjoint by
    autograd; the iteration applies the operator in float32, where
    convolutions are fast, and ``||A_K y||`` is evaluated in float64): the
    operator attains it, so it is a value from below.
    Lanczos reaches a given accuracy in far fewer operator applications than
    power iteration; a ``start`` vector (the previous ``vector``, e.g. of the
    same layer before a training step) warm-starts it.
  - ``upper``: the padded input ``Pad(x)`` (``P_h x P_w = (H + 2 p_h) x (W + 2 p_w)``)
    sits in a torus of ``T_h x T_w`` (the multiples of the stride at least
    ``P_h x P_w``), where the circular convolution ``C`` with the same kernel,
    groups and stride reads exactly the taps the layer reads (no window
    reaches past ``P``). So ``A_K = R C E Pad`` with ``R`` a restriction to
    some outputs and ``E`` the embedding, both of norm at most 1, and
    ``||A_K|| <= ||C|| ||Pad||``. ``||C||`` is exact by the FFT formula;
    ``Pad`` copies input pixels (zero padding: none twice), so
    ``||Pad|| = sqrt(the largest number of copies of one pixel)`` (1 for zero
    padding). With unequal strides ``C`` is taken with stride 1 (subsampling
    is another restriction).

  Both ends are widened by a relative ``1e-10`` for the float64 rounding of
  their evaluation. The iteration stops once the relative gap
  ``(upper - lower) / upper`` is at most ``tol`` (``converged``), once the top
  Ritz pair has converged (residual ``||A^T A y - theta y|| <= tol theta``,
  after at least a few steps: more steps would barely move ``lower``, the
  bracket's width is then the torus bound's), or after ``max_iter`` operator
  applications. ``converged`` means the bracket is certified to within
  ``tol``, nothing less.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from .._arrays import scale_exponent
from ..conv import _input_size, conv_singular_values, dilated_kernel, kernel_weight
from ..errors import InvalidInputError
from ._conv_geometry import pad_input
from ._threads import native_threads, one_torch_thread

Pair = Union[int, Tuple[int, int]]

#: Relative widening of both ends of a bracket for the float64 rounding of their evaluation.
ROUNDING = 1e-10
EXACT_CIRCULAR, EXACT_POINTWISE = "exact (circular)", "exact (1x1 kernel)"
BRACKET, DENSE = "bracket (Lanczos, circular torus)", "bracket (dense, Cholesky certificate)"
#: Default relative gap of the bracket at which the iteration stops, and its budget of operator applications
#: from a random start and from a given (warm) start vector.
DEFAULT_TOL, DEFAULT_MAX_ITER, DEFAULT_WARM_MAX_ITER = 1e-3, 60, 15
#: The dense route: the smaller side of ``A_K`` (of each group's block where there are several groups) at most
#: this, and at most this many entries in all.
DENSE_MAX_SIDE, DENSE_GROUP_SIDE, DENSE_MAX_ENTRIES = 1024, 256, 1 << 22
_RESTART = 30   # Lanczos vectors kept before a restart from the Ritz vector
_MIN_STEPS = 4  # Lanczos steps of a cycle before its Ritz residual may stop it


@dataclass(frozen=True)
class OperatorNormEstimate:
    """``||A_K||`` of a convolution: exact, or a certified bracket (see the module docstring).

    ``lower <= ||A_K|| <= upper`` always.

    Attributes
    ----------
    estimate : float
        The exact value (a ``method`` starting with ``"exact"``; ``lower`` and
        ``upper`` then differ from it only by the stated rounding widening), or
        ``lower``, the value attained by the unit vector ``vector``.
    iterations : int
        Applications of ``A_K^T A_K`` (0 when exact).
    converged : bool
        The relative gap is at most the call's ``tol``.
    seed : int
        Seed of the start vector.
    lower, upper : float
        The certified bracket.
    method : str
        ``"exact (circular)"``, ``"exact (1x1 kernel)"`` or ``"bracket (...)"`` saying how.
    vector : numpy.ndarray or None
        The flattened ``C_in x H x W`` unit vector attaining ``lower`` (None when
        exact), to warm-start the next call on a slightly changed kernel.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import conv_operator_norm
    >>> _ = torch.manual_seed(0)
    >>> result = conv_operator_norm(nn.Conv2d(2, 3, 3, padding=1), (8, 8))
    >>> result.lower <= result.upper, result.exact, result.gap < 1e-3
    (True, False, True)
    """

    estimate: float
    iterations: int
    converged: bool
    seed: int
    lower: float
    upper: float
    method: str
    vector: Optional[np.ndarray] = field(default=None, repr=False, compare=False)

    @property
    def gap(self) -> float:
        """``(upper - lower) / upper``: the relative width of the bracket (0 when exact)."""
        return (self.upper - self.lower) / self.upper if self.upper > 0 else 0.0

    @property
    def exact(self) -> bool:
        return self.method.startswith("exact")

    def __float__(self) -> float:
        return self.estimate


def _pair(value: Any, name: str) -> Tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise InvalidInputError(f"{name} must be an integer or a pair of integers, got {value!r}")
    return values


@dataclass(frozen=True)
class _Geometry:
    weight: np.ndarray   # (C_out, C_in / G, kh, kw), float64
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    padding_mode: str
    groups: int


def _geometry(conv: Any, stride: Pair, padding: Pair, dilation: Pair, padding_mode: str, groups: int) -> _Geometry:
    """The one reading of a Conv2d (or a weight and keywords) for the operator norm."""
    if isinstance(conv, nn.Conv2d):
        if isinstance(conv.padding, str):
            raise InvalidInputError(f"padding = {conv.padding!r}: give the padding as integers")
        stride, padding, dilation = conv.stride, conv.padding, conv.dilation
        padding_mode, groups, conv = conv.padding_mode, conv.groups, conv.weight.detach().cpu()
    weight = kernel_weight(conv).astype(np.float64)
    if not np.all(np.isfinite(weight)):
        raise InvalidInputError("the kernel contains NaN or infinity")
    if padding_mode not in ("zeros", "circular", "reflect", "replicate"):
        raise InvalidInputError(f"unknown padding_mode {padding_mode!r}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise InvalidInputError(f"groups must be a positive integer, got {groups!r}")
    if weight.shape[0] % groups:
        raise InvalidInputError(f"groups = {groups} does not divide the {weight.shape[0]} output channels")
    return _Geometry(weight, _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"),
                     padding_mode, groups)


def _forward(g: _Geometry, kernel: torch.Tensor):
    def apply(x: torch.Tensor) -> torch.Tensor:
        x, pad = pad_input(x, g.padding, g.padding_mode)
        return nn.functional.conv2d(x, kernel, stride=g.stride, padding=pad, dilation=g.dilation, groups=g.groups)
    return apply


def _output_size(g: _Geometry, h: int, w: int) -> Tuple[int, int]:
    kernel = dilated_kernel(g.weight, g.dilation)
    return tuple((n + 2 * p - k) // s + 1 for n, p, k, s in zip((h, w), g.padding, kernel.shape[2:], g.stride))


def _exact_circular(g: _Geometry, h: int, w: int) -> Optional[float]:
    """``||A_K||`` by the FFT formula when the layer is the circular convolution on the ``H x W`` torus."""
    kernel, s = dilated_kernel(g.weight, g.dilation), g.stride[0]
    if g.padding_mode != "circular" or g.stride[1] != s or h % s or w % s:
        return None
    if any(2 * p != k - 1 for p, k in zip(g.padding, kernel.shape[2:])):
        return None
    return float(conv_singular_values(_wrapped(kernel, h, w), (h, w), k=1, groups=g.groups, stride=s)[0])


def _wrapped(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """A (dilated) kernel larger than the ``H x W`` torus folded onto it: tap ``(a, c)`` added into
    ``(a mod H, c mod W)``. On the torus a tap at ``a`` reads the same pixel as one at ``a mod H``, so this is
    the same operator (``torch`` allows circular padding up to the input size: a ``3 x 3`` kernel with dilation
    2 on a ``4 x 4`` input reads some pixels through two taps); a kernel that fits is returned as is."""
    kh, kw = kernel.shape[2:]
    if kh <= h and kw <= w:
        return kernel
    folded = np.zeros(kernel.shape[:2] + (min(kh, h), min(kw, w)), dtype=kernel.dtype)
    for a in range(kh):
        for c in range(kw):
            folded[:, :, a % h, c % w] += kernel[:, :, a, c]
    return folded


def _group_blocks(g: _Geometry, tap: Tuple[int, int] = (0, 0)) -> list:
    """The groups' ``(C_out/G) x (C_in/G)`` matrices of one kernel tap."""
    rows = g.weight.shape[0] // g.groups
    return [g.weight[i * rows:(i + 1) * rows, :, tap[0], tap[1]] for i in range(g.groups)]


def _reads_input(n: int, padding: int, stride: int, outputs: int) -> bool:
    """Whether some output index ``i < outputs`` of a 1-tap axis reads input row ``i s - p`` inside ``[0, n)``."""
    return any(0 <= i * stride - padding < n for i in range(outputs))


def _exact_pointwise(g: _Geometry, h: int, w: int) -> Optional[float]:
    """``max_g sigma_0(K_g)`` for a 1x1 kernel with zero padding (module docstring), else None."""
    if g.weight.shape[2:] != (1, 1) or (g.padding_mode != "zeros" and g.padding != (0, 0)):
        return None
    ho, wo = _output_size(g, h, w)
    if not (_reads_input(h, g.padding[0], g.stride[0], ho) and _reads_input(w, g.padding[1], g.stride[1], wo)):
        return 0.0   # every output pixel reads padding: A_K = 0
    return max(float(torch.linalg.svdvals(torch.from_numpy(block))[0]) for block in _group_blocks(g))


def _dense_blocks(g: _Geometry, h: int, w: int) -> Optional[np.ndarray]:
    """``A_K`` of a small zero-padded layer as its groups' dense blocks, ``(G, C_out/G Ho Wo, C_in/G H W)``
    (the operator is block diagonal over the groups), else None: the smaller side of a block above
    ``DENSE_MAX_SIDE`` (``DENSE_GROUP_SIDE`` with several groups) or more than ``DENSE_MAX_ENTRIES`` entries."""
    if g.padding_mode != "zeros" and g.padding != (0, 0):
        return None
    kernel = dilated_kernel(g.weight, g.dilation)
    c_out, c_group, kh, kw = kernel.shape
    rows = c_out // g.groups
    ho, wo = _output_size(g, h, w)
    n_in, n_out = c_group * h * w, rows * ho * wo
    side = DENSE_MAX_SIDE if g.groups == 1 else DENSE_GROUP_SIDE
    if min(n_in, n_out) > side or g.groups * n_in * n_out > DENSE_MAX_ENTRIES:
        return None
    (ph, pw), (sh, sw) = g.padding, g.stride
    taps = kernel.reshape(g.groups, rows, c_group, kh, kw)
    dense = np.zeros((g.groups, rows, c_group, ho, wo, h, w))
    oi, oj = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    for a in range(kh):
        for b in range(kw):
            ii, jj = oi * sh + a - ph, oj * sw + b - pw    # the input pixel of this tap (outside: padding zeros)
            inside = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
            if inside.any() and np.any(taps[..., a, b]):
                dense[..., oi[inside], oj[inside], ii[inside], jj[inside]] += taps[..., a, b][..., None]
    return dense.transpose(0, 1, 3, 4, 2, 5, 6).reshape(g.groups, n_out, n_in)


def _dense_bracket(g: _Geometry, h: int, w: int, tol: float) -> Optional[Tuple[float, float]]:
    """``(lower, upper)`` of ``||A_K|| = max_g ||A_g||`` from the dense blocks of a small zero-padded layer
    (``_dense_blocks``), else None.

    Each block ``A`` is oriented with rows on the smaller side; ``lower = ||A^T y||``
    (``= ||A_K^T y||``, and ``||A_K^T|| = ||A_K||``) for a unit vector ``y``
    from the explicit Gram matrix ``G = A A^T`` (float64): the top Ritz vector
    of Lanczos for one group, the top eigenvector of the symmetric eigensolver
    for each of several (small) groups at once. ``upper``: a Cholesky
    factorisation of ``(mu - c) I - G`` that succeeds in floating point proves
    ``mu I - G`` positive definite (Rump, "Verification of positive
    definiteness", BIT 2006) for ``c = 2 (n + 2) eps trace(mu I - G)``, so
    ``lambda_max(G) < mu``; the float64 product ``G`` differs from ``A A^T`` by
    at most ``(m + 2) eps ||A||_F^2`` in the 2-norm (``m`` the inner
    dimension), added to ``mu``. ``mu`` is tried at ``lower^2`` times
    ``1 + 1e-8``, ``1 + 1e-6`` and ``(1 + tol)^2``; where none succeeds, the
    symmetric eigensolver's top eigenvalue widened the same way gives ``upper``.
    """
    blocks = _dense_blocks(g, h, w)
    if blocks is None:
        return None
    a = np.ascontiguousarray(blocks.transpose(0, 2, 1) if blocks.shape[1] > blocks.shape[2] else blocks)
    gram = a @ a.transpose(0, 2, 1)
    groups, n, m = a.shape
    eps = float(np.finfo(np.float64).eps)
    product_error = (m + 2) * eps * np.einsum("gij,gij->g", a, a)
    if groups == 1:
        start = torch.ones(n, dtype=torch.float64) + 0.5 * torch.randn(
            n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        a_t, gram_t = torch.from_numpy(a[0]), torch.from_numpy(gram[0])
        top, _, _ = _lanczos(lambda v: a_t.T @ v.reshape(-1), start, float("inf"), 1e-10, 4 * _RESTART,
                             gram=lambda v: gram_t @ v.reshape(-1), ritz_tol=1e-10)
        lower = np.array([top])
    else:
        y = np.linalg.eigh(gram)[1][:, :, -1]
        lower = np.linalg.norm(np.einsum("gnm,gn->gm", a, y), axis=1)
    trace = np.trace(gram, axis1=1, axis2=2)
    upper = np.full(groups, np.nan)
    diagonal = np.arange(n)
    for factor in (1 + 1e-8, 1 + 1e-6, (1 + tol) ** 2):
        mu = lower * lower * factor
        margin = 2 * (n + 2) * eps * (n * mu - trace)
        shifted = -gram
        shifted[:, diagonal, diagonal] += (mu - margin)[:, None]
        _, info = torch.linalg.cholesky_ex(torch.from_numpy(shifted))
        proven = (info.numpy() == 0) & np.isnan(upper)
        upper[proven] = np.sqrt(mu[proven] + product_error[proven])
    if np.isnan(upper).any():
        left = np.isnan(upper)
        top = np.linalg.eigvalsh(gram[left])[:, -1]
        slack = product_error[left] + 16 * n * eps * np.abs(top)
        lower[left] = np.maximum(lower[left], np.sqrt(np.maximum(top - slack, 0.0)))
        upper[left] = np.sqrt(np.maximum(top + slack, 0.0))
    return float(lower.max()) * (1 - ROUNDING), float(upper.max())


def _pad_norm(g: _Geometry, h: int, w: int) -> float:
    """``||Pad||``: the square root of the largest number of copies of one input pixel in the padded image."""
    if g.padding_mode == "zeros":
        return 1.0
    index = np.arange(h * w).reshape(h, w)
    mode = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}[g.padding_mode]
    padded = np.pad(index, ((g.padding[0],) * 2, (g.padding[1],) * 2), mode=mode)
    return float(np.sqrt(np.bincount(padded.ravel(), minlength=h * w).max()))


def _torus_upper(g: _Geometry, h: int, w: int) -> float:
    """``||C|| ||Pad||`` with ``C`` the circular convolution on the padded torus (module docstring)."""
    kernel = dilated_kernel(g.weight, g.dilation)
    s = g.stride[0] if g.stride[0] == g.stride[1] else 1
    torus = tuple(-(-(n + 2 * p) // s) * s for n, p in zip((h, w), g.padding))
    top = conv_singular_values(kernel, torus, k=1, groups=g.groups, stride=s, threads=native_threads())[0]
    return float(top) * _pad_norm(g, h, w)


def conv_operator_norm(conv: Any, input_size: Union[int, Sequence[int]], *, stride: Pair = 1, padding: Pair = 0,
                       dilation: Pair = 1, padding_mode: str = "zeros", groups: int = 1, seed: Optional[int] = 0,
                       tol: float = DEFAULT_TOL, max_iter: Optional[int] = None, start: Any = None,
                       dense: bool = True, ritz_tol: Optional[float] = None) -> OperatorNormEstimate:
    """``||A_K||`` of a convolution on ``C_in x H x W`` inputs: exact, or a certified bracket.

    Parameters
    ----------
    conv : torch.nn.Conv2d or array_like
        A module (its stride, padding, dilation, padding mode and groups are
        used) or a weight ``(C_out, C_in / G, kh, kw)`` with the geometry
        given by the keyword arguments.
    input_size : int or (int, int)
        ``(H, W)``.
    stride, padding, dilation, padding_mode, groups
        The geometry of a bare weight, as ``torch.nn.Conv2d`` takes it.
    seed : int, optional
        Seeds the Gaussian start vector of the iteration (unused with ``start``).
    tol : float, default 1e-3
        Stop when the relative gap ``(upper - lower) / upper`` is at most
        ``tol`` (``converged``), or when the top Ritz pair's relative residual is.
    max_iter : int, optional
        At most this many applications of ``A_K^T A_K``; default 60, or 15
        with a ``start`` vector (a warm start needs few).
    start : array_like, optional
        ``C_in H W`` values (e.g. the ``vector`` of an earlier result for this
        layer): the start vector of the iteration.
    dense : bool, default True
        Allow the dense route for small zero-padded operators (module docstring).
    ritz_tol : float, optional
        Stop once the top Ritz pair's relative residual is at most this
        (default ``tol``). The iteration applies the operator in float32
        unless ``ritz_tol`` is below ``1e-5`` (float64 then).

    Returns
    -------
    OperatorNormEstimate
        ``lower <= ||A_K|| <= upper`` (module docstring); exact for a
        circular convolution that keeps the input size and for a 1x1
        zero-padded convolution. The bias plays no part
        (the operator is linear).

    Raises
    ------
    InvalidInputError
        NaN or infinity in the kernel, a geometry ``conv2d`` cannot apply to
        the input, bad ``tol``, ``max_iter`` or ``start``.

    Examples
    --------
    >>> import torch, relusv.torch
    >>> conv = torch.nn.Conv2d(4, 4, 3, padding=1, groups=2)
    >>> r = relusv.torch.conv_operator_norm(conv, 8)
    >>> r.lower <= r.upper and r.gap < 0.5
    True
    """
    g = _geometry(conv, stride, padding, dilation, padding_mode, groups)
    h, w = _input_size(input_size)
    if max_iter is None:
        max_iter = DEFAULT_MAX_ITER if start is None else DEFAULT_WARM_MAX_ITER
    if not (tol > 0) or isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InvalidInputError(f"tol must be positive and max_iter a positive integer, got {tol}, {max_iter}")
    seed = 0 if seed is None else int(seed)
    # ||c A_K|| = c ||A_K||: measured on the kernel scaled by a power of two (exact) to a largest entry in
    # [1/2, 1), so that its Gram matrix neither underflows (a kernel of 1e-170 would read as the zero operator,
    # with upper end 0) nor overflows (1e150: no eigenvalues); the results are scaled back, exactly.
    exponent = scale_exponent(g.weight)
    result = _measure(replace(g, weight=np.ldexp(g.weight, -exponent)), h, w, seed, tol, max_iter, start, dense,
                      ritz_tol)
    if exponent == 0:
        return result
    return replace(result, estimate=float(np.ldexp(result.estimate, exponent)),
                   lower=float(np.ldexp(result.lower, exponent)), upper=float(np.ldexp(result.upper, exponent)))


def _measure(g: _Geometry, h: int, w: int, seed: int, tol: float, max_iter: int, start: Any, dense: bool,
             ritz_tol: Optional[float]) -> OperatorNormEstimate:
    """``conv_operator_norm`` of a checked geometry (its kernel scaled as that function says)."""
    kernel = torch.from_numpy(g.weight)
    forward = _forward(g, kernel)
    x = _start_vector(start, seed, (1, kernel.shape[1] * g.groups, h, w))
    try:
        with torch.no_grad():
            _forward(g, kernel.float())(x.float())   # the geometry check, in float32 (fast)
    except RuntimeError as error:
        raise InvalidInputError(f"the convolution cannot be applied to a {h} x {w} input: {error}") from None
    exact = _exact(g, h, w)
    if exact is not None:
        value, lower, upper, method = exact
        return OperatorNormEstimate(value, 0, True, seed, lower, upper, method)
    found = _dense_bracket(g, h, w, tol) if dense else None
    if found is not None:
        lower, upper = found
        return OperatorNormEstimate(lower, 0, upper - lower <= tol * upper, seed, lower, upper, DENSE)
    upper = _torus_upper(g, h, w) * (1 + ROUNDING)
    if ritz_tol is not None and ritz_tol < 1e-5:
        gram = _gram(forward)
    else:   # iterate in float32 (fast convolutions); the lower end is measured in float64
        single = _gram(_forward(g, kernel.float()))
        gram = lambda v: single(v.float()).double()   # noqa: E731
    lower, vector, iterations = _lanczos(forward, x, upper, tol, max_iter, gram=gram, ritz_tol=ritz_tol)
    lower *= 1 - ROUNDING
    upper = max(upper, lower)
    converged = upper - lower <= tol * upper
    return OperatorNormEstimate(lower, iterations, converged, seed, lower, upper, BRACKET, vector)


def _exact(g: _Geometry, h: int, w: int) -> Optional[Tuple[float, float, float, str]]:
    """``(value, lower, upper, method)`` by the first exact route that applies, else None."""
    value = _exact_circular(g, h, w)
    if value is not None:
        return value, value, value, EXACT_CIRCULAR
    value = _exact_pointwise(g, h, w)
    if value is not None:
        return value, value * (1 - ROUNDING), value * (1 + ROUNDING), EXACT_POINTWISE
    return None


def _start_vector(start: Any, seed: int, shape: Tuple[int, ...]) -> torch.Tensor:
    """The iteration's start: a seeded Gaussian vector, or ``start`` (unit) plus a fifth of a unit Gaussian one.

    The Gaussian part keeps the Krylov space from collapsing when ``start``
    is close to an eigenvector of ``A^T A`` other than the top one (the old
    top vector after a large weight change).
    """
    noise = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if start is None:
        return noise
    x = torch.as_tensor(np.asarray(start, dtype=np.float64)).reshape(-1)
    if x.numel() != int(np.prod(shape)) or not torch.isfinite(x).all() or float(x.norm()) == 0:
        raise InvalidInputError(f"start must hold {int(np.prod(shape))} finite values, not all zero "
                                f"(a C_in x H x W input), got {x.numel()}")
    return x.reshape(shape) / x.norm() + 0.2 * noise / noise.norm()


def _gram(forward: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> A^T A v`` by autograd (the adjoint of ``conv2d`` is its gradient)."""
    def apply(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().requires_grad_(True)
        y = forward(v)
        (gradient,) = torch.autograd.grad(y, v, y.detach())
        return gradient.detach()
    return apply


def _lanczos(forward: Callable, x: torch.Tensor, upper: float, tol: float, max_iter: int,
             gram: Optional[Callable] = None, ritz_tol: Optional[float] = None) -> Tuple[float, np.ndarray, int]:
    """``(max ||A y||, y, applications)`` over the unit Ritz vectors ``y`` of restarted Lanczos on ``A^T A``
    (``gram``: ``v -> A^T A v``, by default by autograd through ``forward``).

    Runs on one torch thread (``one_torch_thread``): each step applies the operator to a single input.
    """
    with one_torch_thread():
        return _lanczos_iterations(forward, x, upper, tol, max_iter, gram, ritz_tol)


def _lanczos_iterations(forward: Callable, x: torch.Tensor, upper: float, tol: float, max_iter: int,
                        gram: Optional[Callable], ritz_tol: Optional[float]) -> Tuple[float, np.ndarray, int]:
    gram, shape = gram or _gram(forward), x.shape
    v = x.reshape(-1) / x.norm()
    best, best_vector, used = 0.0, v, 0
    while used < max_iter:
        y, steps, residual, theta = _lanczos_cycle(gram, v, shape, min(_RESTART, max_iter - used), upper, tol,
                                                   ritz_tol)
        used += steps
        with torch.no_grad():
            value = float(forward(y.reshape(shape)).norm())
        if value > best:
            best, best_vector = value, y
        if _within(best, upper, tol) or residual <= _ritz_tolerance(theta, upper, tol, ritz_tol) * theta or \
                theta <= 0:
            break
        v = y
    return best, best_vector.numpy().copy(), used


def _lanczos_cycle(gram: Callable, v: torch.Tensor, shape, steps: int, upper: float, tol: float,
                   ritz_tol: Optional[float]) -> Tuple[torch.Tensor, int, float, float]:
    """One Lanczos cycle of at most ``steps`` applications from unit ``v``, fully reorthogonalised.

    Returns the unit top Ritz vector, the applications used, the Ritz residual
    estimate ``beta_j |s_j|`` and the top Ritz value ``theta``.
    """
    basis, alphas, betas = [v], [], []
    s, theta, residual = torch.ones(1, dtype=torch.float64), 0.0, float("inf")
    for j in range(steps):
        wv = gram(basis[j].reshape(shape)).reshape(-1)
        alphas.append(float(wv @ basis[j]))
        stacked = torch.stack(basis)
        for _ in range(2):   # full reorthogonalisation, twice is enough
            wv = wv - stacked.T @ (stacked @ wv)
        beta = float(wv.norm())
        tridiagonal = np.diag(alphas)      # small: NumPy's eigensolver has no per-call threading overhead
        if betas:
            tridiagonal += np.diag(betas, 1) + np.diag(betas, -1)
        values, vectors = np.linalg.eigh(tridiagonal)
        theta, s = float(values[-1]), torch.from_numpy(vectors[:, -1].copy())
        residual = beta * abs(float(s[-1]))
        done = (j >= _MIN_STEPS and residual <= _ritz_tolerance(theta, upper, tol, ritz_tol) * theta) or \
            _within(np.sqrt(max(theta, 0.0)), upper, tol)
        if done or beta <= 1e-14 * max(theta, 1e-300) or j == steps - 1:
            return _ritz_vector(basis, s), j + 1, residual, theta
        basis.append(wv / beta)
        betas.append(beta)
    return _ritz_vector(basis, s), steps, residual, theta


def _ritz_tolerance(theta: float, upper: float, tol: float, ritz_tol: Optional[float]) -> float:
    """The relative Ritz residual at which the iteration stops: ``ritz_tol``, by default ``tol``.

    (A looser rule tied to the bracket's gap stops too early: where the top of
    the spectrum is dense, a small residual is reached near any eigenvalue.)
    """
    return tol if ritz_tol is None else ritz_tol


def _within(lower: float, upper: float, tol: float) -> bool:
    """Whether the relative gap ``(upper - lower) / upper`` is at most ``tol`` (never for an infinite ``upper``)."""
    return bool(np.isfinite(upper)) and upper - lower <= tol * upper


def _ritz_vector(basis, s: torch.Tensor) -> torch.Tensor:
    y = torch.stack(basis[:len(s)]).T @ s
    return y / y.norm()
