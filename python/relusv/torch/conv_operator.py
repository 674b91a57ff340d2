"""The operator norm of a convolution with any padding or stride, by power iteration (MATH.md section 9).

With circular padding and stride 1, ``relusv.conv_singular_values`` gives
every singular value of a convolution exactly. Zero padding, strides and
dilation break the block-circulant structure; the top singular value
``||A_K||`` is then estimated by power iteration on ``A_K^T A_K``, applying
``A_K`` with ``torch.nn.functional.conv2d`` and its adjoint (the transposed
convolution) by autograd. Every iterate ``x`` is a unit vector, so each
``||A_K x||`` is attained by the operator: the estimate is a value **from
below**, ``estimate <= ||A_K||``, that approaches it as the iteration
converges (linearly, at the rate ``(sigma_1 / sigma_0)^2``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..conv import _input_size, kernel_weight
from ..errors import InvalidInputError
from ._conv_geometry import check_conv2d, pad_input

Pair = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class OperatorNormEstimate:
    """A power-iteration estimate of ``||A_K||`` (a value from below, see the module docstring).

    ``estimate = ||A_K x||`` for the final unit vector ``x``; ``iterations``
    run; ``converged`` when the relative change of the estimate fell below
    ``tol``; ``seed`` of the start vector.
    """

    estimate: float
    iterations: int
    converged: bool
    seed: int

    def __float__(self) -> float:
        return self.estimate


def _pair(value: Any, name: str) -> Tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise InvalidInputError(f"{name} must be an integer or a pair of integers, got {value!r}")
    return values


def _geometry(conv: Any, stride: Pair, padding: Pair, dilation: Pair, padding_mode: str):
    if isinstance(conv, nn.Conv2d):
        check_conv2d(conv)
        return conv.weight.detach(), conv.stride, conv.padding, conv.dilation, conv.padding_mode
    return torch.as_tensor(kernel_weight(conv)), stride, padding, dilation, padding_mode


def conv_operator_norm(conv: Any, input_size: Union[int, Sequence[int]], *, stride: Pair = 1, padding: Pair = 0,
                       dilation: Pair = 1, padding_mode: str = "zeros", seed: Optional[int] = 0, tol: float = 1e-7,
                       max_iter: int = 1000) -> OperatorNormEstimate:
    """Estimate of the largest singular value of a convolution on ``C_in x H x W`` inputs.

    ``conv`` is an ``nn.Conv2d`` (its stride, padding, dilation and padding
    mode are used; ``groups`` must be 1) or a weight ``(C_out, C_in, kh, kw)``
    with the geometry given by the keyword arguments. Power iteration on
    ``A^T A`` in float64 from a Gaussian start vector drawn with ``seed``;
    stops when the estimate changes by less than ``tol`` (relative) between
    iterations or after ``max_iter``. The result is ``||A x||`` of a unit
    vector ``x``: never above ``||A||`` (up to rounding), approaching it
    from below; the bias plays no part (the operator is linear).
    """
    weight, stride, padding, dilation, padding_mode = _geometry(conv, stride, padding, dilation, padding_mode)
    h, w = _input_size(input_size)
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if padding_mode not in ("zeros", "circular", "reflect", "replicate"):
        raise InvalidInputError(f"unknown padding_mode {padding_mode!r}")
    if not (tol > 0) or max_iter < 1:
        raise InvalidInputError(f"tol must be positive and max_iter at least 1, got {tol}, {max_iter}")
    kernel = weight.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(kernel).all():
        raise InvalidInputError("the kernel contains NaN or infinity")

    def forward(x: torch.Tensor) -> torch.Tensor:
        x, pad = pad_input(x, padding, padding_mode)
        return nn.functional.conv2d(x, kernel, stride=stride, padding=pad, dilation=dilation)

    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    x = torch.randn(1, kernel.shape[1], h, w, generator=generator, dtype=torch.float64)
    try:
        forward(x)
    except RuntimeError as error:
        raise InvalidInputError(f"the convolution cannot be applied to a {h} x {w} input: {error}") from None
    x /= x.norm()
    estimate, converged, iterations = 0.0, False, 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (returned after the loop)
        x.requires_grad_(True)
        y = forward(x)
        value = float(y.detach().norm())
        (gradient,) = torch.autograd.grad(y, x, y.detach())   # A^T A x
        x = gradient.detach()
        size = x.norm()
        if value > 0 and abs(value - estimate) <= tol * value:
            estimate, converged = max(estimate, value), True
            break
        estimate = max(estimate, value)
        if size == 0:
            converged = True   # A x = 0 for this x: the start vector saw only the kernel's null space
            break
        x /= size
    return OperatorNormEstimate(estimate, iterations, converged, 0 if seed is None else int(seed))
