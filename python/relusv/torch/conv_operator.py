"""The operator norm ``||A_K||`` of a convolution with any padding, stride, dilation or groups (MATH.md section 9).

* **Circular padding** keeping the input size (``2 padding = dilation (k - 1)``)
  with a stride dividing it: ``relusv.conv_singular_values`` gives the top
  singular value exactly (groups and strides included), no iteration.
* **Any other padding**: a certified bracket ``lower <= ||A_K|| <= upper``.

  - ``lower = ||A_K x||`` for the unit vector ``x`` that power iteration on
    ``A_K^T A_K`` ends with (``conv2d`` and its adjoint by autograd, float64):
    the operator attains it, so it is a value from below.
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
  ``(upper - lower) / upper`` is at most ``tol`` (or the estimate changes by less than
  ``tol``, or after ``max_iter``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..conv import _input_size, conv_singular_values, dilated_kernel, kernel_weight
from ..errors import InvalidInputError
from ._conv_geometry import pad_input

Pair = Union[int, Tuple[int, int]]

#: Relative widening of both ends of a bracket for the float64 rounding of their evaluation.
ROUNDING = 1e-10
EXACT_CIRCULAR, BRACKET = "exact (circular)", "bracket (power iteration, circular torus)"


@dataclass(frozen=True)
class OperatorNormEstimate:
    """``||A_K||`` of a convolution: exact, or a certified bracket (see the module docstring).

    ``lower <= ||A_K|| <= upper``; ``estimate`` is the exact value
    (``method == "exact (circular)"``, ``lower == upper``) or ``lower``, the
    power-iteration value attained by a unit vector. ``iterations`` run
    (0 when exact); ``converged`` when the gap or the change of the estimate
    fell below ``tol``; ``seed`` of the start vector.
    """

    estimate: float
    iterations: int
    converged: bool
    seed: int
    lower: float
    upper: float
    method: str

    @property
    def gap(self) -> float:
        """``(upper - lower) / upper``: the relative width of the bracket (0 when exact)."""
        return (self.upper - self.lower) / self.upper if self.upper > 0 else 0.0

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
    return _Geometry(weight, _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation"),
                     padding_mode, groups)


def _forward(g: _Geometry, kernel: torch.Tensor):
    def apply(x: torch.Tensor) -> torch.Tensor:
        x, pad = pad_input(x, g.padding, g.padding_mode)
        return nn.functional.conv2d(x, kernel, stride=g.stride, padding=pad, dilation=g.dilation, groups=g.groups)
    return apply


def _exact_circular(g: _Geometry, h: int, w: int) -> Optional[float]:
    """``||A_K||`` by the FFT formula when the layer is the circular convolution on the ``H x W`` torus."""
    kernel, s = dilated_kernel(g.weight, g.dilation), g.stride[0]
    if g.padding_mode != "circular" or g.stride[1] != s or h % s or w % s:
        return None
    if any(2 * p != k - 1 for p, k in zip(g.padding, kernel.shape[2:])):
        return None
    return float(conv_singular_values(kernel, (h, w), k=1, groups=g.groups, stride=s)[0])


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
    top = conv_singular_values(kernel, torus, k=1, groups=g.groups, stride=s)[0]
    return float(top) * _pad_norm(g, h, w)


def conv_operator_norm(conv: Any, input_size: Union[int, Sequence[int]], *, stride: Pair = 1, padding: Pair = 0,
                       dilation: Pair = 1, padding_mode: str = "zeros", groups: int = 1, seed: Optional[int] = 0,
                       tol: float = 1e-7, max_iter: int = 1000) -> OperatorNormEstimate:
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
        Seeds the Gaussian start vector of the power iteration.
    tol : float
        Stop when the relative gap of the bracket, or the relative change of
        the estimate, is at most ``tol``.
    max_iter : int
        At most this many power iterations.

    Returns
    -------
    OperatorNormEstimate
        ``lower <= ||A_K|| <= upper`` (module docstring); exact for a
        circular convolution that keeps the input size. The bias plays no
        part (the operator is linear).

    Raises
    ------
    InvalidInputError
        NaN or infinity in the kernel, a geometry ``conv2d`` cannot apply to
        the input, bad ``tol`` or ``max_iter``.

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
    if not (tol > 0) or max_iter < 1:
        raise InvalidInputError(f"tol must be positive and max_iter at least 1, got {tol}, {max_iter}")
    seed = 0 if seed is None else int(seed)
    kernel = torch.from_numpy(g.weight)
    forward = _forward(g, kernel)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, kernel.shape[1] * g.groups, h, w, generator=generator, dtype=torch.float64)
    try:
        forward(x)
    except RuntimeError as error:
        raise InvalidInputError(f"the convolution cannot be applied to a {h} x {w} input: {error}") from None
    exact = _exact_circular(g, h, w)
    if exact is not None:
        return OperatorNormEstimate(exact, 0, True, seed, exact, exact, EXACT_CIRCULAR)
    upper = _torus_upper(g, h, w) * (1 + ROUNDING)
    lower, iterations, converged = _power_iteration(forward, x, upper, tol, max_iter)
    lower *= 1 - ROUNDING
    return OperatorNormEstimate(lower, iterations, converged, seed, lower, max(upper, lower), BRACKET)


def _power_iteration(forward, x: torch.Tensor, upper: float, tol: float, max_iter: int) -> Tuple[float, int, bool]:
    """``(max ||A x_t||, iterations, converged)`` over the unit iterates ``x_t`` of power iteration on ``A^T A``."""
    x = x / x.norm()
    estimate, iterations = 0.0, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (returned after the loop)
        x.requires_grad_(True)
        y = forward(x)
        value = float(y.detach().norm())
        (gradient,) = torch.autograd.grad(y, x, y.detach())   # A^T A x
        x = gradient.detach()
        changed = abs(value - estimate)
        estimate = max(estimate, value)
        if value > 0 and (changed <= tol * value or upper - estimate <= tol * upper):
            return estimate, iterations, True
        size = x.norm()
        if size == 0:
            return estimate, iterations, True   # A x = 0: the start vector saw only the kernel's null space
        x = x / size
    return estimate, iterations, False
