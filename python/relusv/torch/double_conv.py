"""Double convolutions (MATH.md section 9): a convolution of channel rank at most ``rank``.

``DoubleConv2d`` computes ``x -> conv_1x1(W1)(conv_{kh x kw}(W2)(x)) + b``:
``W2`` of shape ``(rank, C_in, kh, kw)`` carries the geometry (stride,
padding, dilation), ``W1`` of shape ``(C_out, rank, 1, 1)`` mixes channels.
Its kernel matrix is ``W1_mat W2_mat`` (rank ``<= rank``), with
``rank (C_in kh kw + C_out) + C_out`` parameters instead of
``C_out C_in kh kw + C_out``: the bottleneck that harmonic pruning of a
convolution produces, and a layer to train from scratch with the
double-p-product initialisation at fan-in ``C_in kh kw``.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError
from ._conv_geometry import check_conv2d, pad_input
from .double_linear import (
    _positive,
    factored_svd,
    init_rule,
    reset_double_p_product_,
    split_truncated_svd,
    target_variance,
)

IntPair = Union[int, Tuple[int, int]]


def _pair(value: IntPair, name: str, minimum: int) -> Tuple[int, int]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise InvalidInputError(f"{name} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return values


class DoubleConv2d(nn.Module):
    """A ``Conv2d`` of channel rank at most ``rank``: a ``kh x kw`` conv to ``rank`` channels, then a ``1 x 1`` conv.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    rank : int
        The channels between the two convolutions (``r``).
    stride, padding, dilation : int or (int, int)
        Of the first (``kh x kw``) convolution, as for ``nn.Conv2d``.
    padding_mode : {"zeros", "circular", "reflect", "replicate"}
    bias : bool, default True
        One bias per output channel, added after the ``1 x 1`` convolution.
    init : {"he", "glorot"} or float, default "he"
        Target variance ``v`` of every entry of the kernel ``W1_mat W2_mat``:
        He ``2 / (C_in kh kw)``, Glorot ``2 / (C_in kh kw + C_out kh kw)``
        (PyTorch's fans of a convolution), or the given number.
    p : int, default 1
        Double-p-product initialisation (MATH.md sections 7 and 9): each entry
        of ``W1`` and ``W2`` is a product of ``p`` independent ``N(0, tau^2)``
        samples with ``rank tau^(4p) = v``; ``b = 0``. Same code as ``DoubleLinear``.
    seed : int or None
        Seed of the initialisation (None: torch's global generator).
    device, dtype
        As for ``nn.Conv2d``.

    Returns
    -------
    DoubleConv2d
        ``weight`` is the product kernel ``(C_out, C_in, kh, kw)`` of channel
        rank at most ``rank``; ``from_conv`` builds one from a trained convolution.

    Raises
    ------
    InvalidTypeError
        A size or ``rank`` that is not an integer; ``from_conv`` given
        something other than an ``nn.Conv2d`` or ``DoubleConv2d``.
    InvalidInputError
        Sizes, ``rank``, ``stride`` or ``dilation`` below 1, a negative
        ``padding``, an unknown ``padding_mode`` or ``init``.

    Examples
    --------
    >>> import torch
    >>> from relusv.torch import DoubleConv2d
    >>> conv = DoubleConv2d(3, 8, 3, rank=2, padding=1, seed=0)
    >>> conv.weight.shape, conv(torch.randn(1, 3, 5, 5)).shape
    (torch.Size([8, 3, 3, 3]), torch.Size([1, 8, 5, 5]))
    >>> int(torch.linalg.matrix_rank(conv.weight.detach().reshape(8, -1)))
    2
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, rank: int, stride: IntPair = 1,
                 padding: IntPair = 0, dilation: IntPair = 1, bias: bool = True, init: Union[str, float] = "he",
                 p: int = 1, padding_mode: str = "zeros", seed: Optional[int] = None, device=None, dtype=None):
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels")
        self.out_channels = _positive(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.rank = _positive(rank, "rank")
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.dilation = _pair(dilation, "dilation", 1)
        if padding_mode not in ("zeros", "circular", "reflect", "replicate"):
            raise InvalidInputError(f"padding_mode must be 'zeros', 'circular', 'reflect' or 'replicate', got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.p = _positive(p, "p")
        self.init = init_rule(init)
        kw = {"device": device, "dtype": dtype}
        self.weight1 = nn.Parameter(torch.empty(self.out_channels, self.rank, 1, 1, **kw))
        self.weight2 = nn.Parameter(torch.empty(self.rank, self.in_channels, *self.kernel_size, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_channels, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(seed)

    @property
    def fan_in(self) -> int:
        """``C_in kh kw``: the columns of the kernel matrix."""
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def target_variance(self) -> float:
        """``v``: the variance every entry of the kernel gets at initialisation."""
        return target_variance(self.init, self.fan_in, self.out_channels * self.kernel_size[0] * self.kernel_size[1])

    def reset_parameters(self, seed: Optional[int] = None) -> None:
        """Double-p-product initialisation at fan-in ``C_in kh kw``; ``b = 0``."""
        reset_double_p_product_(self, self.target_variance(), seed)

    @property
    def kernel_matrix(self) -> torch.Tensor:
        """``W1_mat W2_mat`` of shape ``(C_out, C_in kh kw)`` (differentiable)."""
        return self.weight1.reshape(self.out_channels, self.rank) @ self.weight2.reshape(self.rank, -1)

    def svd(self) -> tuple:
        """The thin SVD ``(u, s, vt)`` of ``K_mat`` from the factors (``factored_svd``), float64."""
        return factored_svd(self.weight1.reshape(self.out_channels, self.rank), self.weight2.reshape(self.rank, -1))

    @property
    def weight(self) -> torch.Tensor:
        """The equivalent ``Conv2d`` weight ``(C_out, C_in, kh, kw)`` (differentiable)."""
        return self.kernel_matrix.reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = pad_input(x, self.padding, self.padding_mode)
        z = nn.functional.conv2d(x, self.weight2, None, self.stride, padding, self.dilation)
        return nn.functional.conv2d(z, self.weight1, self.bias)

    def parameter_count(self) -> int:
        return self.rank * (self.fan_in + self.out_channels) + (self.out_channels if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, rank={self.rank}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}, init={self.init!r}, p={self.p}"
                + (f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else ""))

    @classmethod
    def from_conv(cls, conv: nn.Module, rank: int, svd: Optional[tuple] = None) -> DoubleConv2d:
        """The best rank-``rank`` approximation of a ``Conv2d`` (or ``DoubleConv2d``) kernel as two convolutions.

        The truncated SVD of ``K_mat`` (``relusv.truncated_svd``, float64),
        split evenly as in MATH.md section 7: ``W2_mat = Sigma_r^{1/2} V_r^T``
        (reshaped to ``(rank, C_in, kh, kw)``), ``W1_mat = U_r Sigma_r^{1/2}``.
        Geometry and bias are copied; at ``rank = min(C_out, C_in kh kw)`` the
        layer is reproduced up to rounding. ``groups`` must be 1. Device and
        dtype follow ``conv``. A ``DoubleConv2d``'s SVD comes from its factors (``factored_svd``); ``svd``: a
        precomputed ``(u, s, vt)`` of ``K_mat``.
        """
        if isinstance(conv, nn.Conv2d):
            check_conv2d(conv)
        elif not isinstance(conv, DoubleConv2d):
            raise InvalidTypeError(f"from_conv needs an nn.Conv2d or a DoubleConv2d, got {type(conv).__name__}")
        weight = conv.weight.detach()
        c_out, c_in, kh, kw = weight.shape
        if svd is None and isinstance(conv, DoubleConv2d):
            svd = conv.svd()
        w1, w2 = split_truncated_svd(weight.reshape(c_out, -1), rank, svd)
        bias = getattr(conv, "bias", None)
        layer = cls(c_in, c_out, (kh, kw), rank, stride=tuple(conv.stride), padding=tuple(conv.padding),
                    dilation=tuple(conv.dilation), bias=bias is not None, padding_mode=conv.padding_mode, seed=0,
                    device="cpu", dtype=torch.float64)
        with torch.no_grad():
            layer.weight1.copy_(w1.reshape(c_out, rank, 1, 1))
            layer.weight2.copy_(w2.reshape(rank, c_in, kh, kw))
            if bias is not None:
                layer.bias.copy_(bias.detach().cpu().double())
        return layer.to(device=weight.device, dtype=weight.dtype)

    def to_conv(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` with weight ``W1_mat W2_mat`` and the same geometry and bias."""
        w = self.weight.detach()
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                         padding=self.padding, dilation=self.dilation, bias=self.bias is not None,
                         padding_mode=self.padding_mode, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            conv.weight.copy_(w)
            if self.bias is not None:
                conv.bias.copy_(self.bias.detach())
        return conv
