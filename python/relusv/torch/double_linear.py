"""Double layers (MATH.md section 7): a linear map stored as two factors.

``DoubleLinear`` computes ``y = W1 (W2 x) + b`` with ``W1`` of shape
``(out, rank)`` and ``W2`` of shape ``(rank, in)``, so its weight has rank at
most ``rank`` and it has ``rank * (in + out) + out`` parameters instead of
``in * out + out``. Training keeps the factors separate, so the rank bound
survives any number of gradient steps.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError


def _positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise InvalidInputError(f"{name} must be positive, got {value}")
    return int(value)


def init_rule(init: Union[str, float]) -> Union[str, float]:
    """``init`` checked: ``"he"``, ``"glorot"`` (any case) or a positive variance."""
    if isinstance(init, str):
        if init.lower() not in ("he", "glorot"):
            raise InvalidInputError(f"init must be 'he', 'glorot' or a positive variance, got {init!r}")
        return init.lower()
    if not (isinstance(init, (int, float)) and not isinstance(init, bool) and math.isfinite(init) and init > 0):
        raise InvalidInputError(f"init must be 'he', 'glorot' or a positive variance, got {init!r}")
    return init


def target_variance(init: Union[str, float], fan_in: int, fan_out: int) -> float:
    """``v`` of MATH.md section 7: He ``2 / fan_in``, Glorot ``2 / (fan_in + fan_out)``, or ``init`` itself."""
    if init == "he":
        return 2.0 / fan_in
    if init == "glorot":
        return 2.0 / (fan_in + fan_out)
    return float(init)


def double_p_product_(factors, variance: float, rank: int, p: int, seed: Optional[int]) -> None:
    """Double-p-product initialisation (MATH.md section 7) of ``factors`` in place.

    Every entry is the product of ``p`` independent ``N(0, tau^2)`` samples with
    ``rank * tau^(4p) = variance``, drawn in float64 on the CPU (``seed``: a
    fresh generator; None: torch's global one), so that each entry of the
    product of the two factors has variance ``variance``.
    """
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    tau = factor_std(variance, rank, p)
    with torch.no_grad():
        for w in factors:
            entries = torch.ones(w.shape, dtype=torch.float64)
            for _ in range(p):
                entries *= torch.normal(0.0, tau, size=w.shape, generator=generator, dtype=torch.float64)
            w.copy_(entries)


def factor_std(variance: float, rank: int, p: int) -> float:
    """``tau`` with ``rank * tau^(4p) = variance`` (MATH.md section 7)."""
    return (variance / rank) ** (1.0 / (4 * p))


def reset_double_p_product_(layer: nn.Module, variance: float, seed: Optional[int]) -> None:
    """``reset_parameters`` of the double-p-product layers: ``layer.weight1`` and
    ``layer.weight2`` by ``double_p_product_`` at ``variance``, ``layer.bias`` (if any) zero."""
    double_p_product_((layer.weight1, layer.weight2), variance, layer.rank, layer.p, seed)
    if layer.bias is not None:
        with torch.no_grad():
            layer.bias.zero_()


def split_truncated_svd(weight: torch.Tensor, rank: int, svd: Optional[tuple] = None) -> tuple:
    """``(U_r Sigma_r^{1/2}, Sigma_r^{1/2} V_r^T)`` of a 2-D weight, float64 on the CPU.

    The rank-``rank`` truncated SVD by the engine (``relusv.truncated_svd``), or taken from ``svd`` (a full or
    truncated ``(u, s, vt)`` of ``weight`` with at least ``rank`` triplets, e.g. ``factored_svd``), split evenly
    between the factors (MATH.md sections 7 and 8).
    """
    from .. import truncated_svd

    m, n = weight.shape
    rank = _positive(rank, "rank")
    if rank > min(m, n):
        raise InvalidInputError(f"rank must be at most min(out, in) = {min(m, n)} of the {m} x {n} weight, got {rank}")
    if svd is None or len(svd[1]) < rank:
        svd = truncated_svd(weight.detach().cpu().double().numpy(), rank)
    u, s, vt = (np.asarray(a, dtype=np.float64) for a in svd)
    root = np.sqrt(s[:rank])
    return torch.from_numpy(u[:, :rank] * root[None, :]), torch.from_numpy(root[:, None] * vt[:rank])


def factored_svd(w1: torch.Tensor, w2: torch.Tensor) -> tuple:
    """The thin SVD ``(u, s, vt)`` of ``W1 W2`` from the factors (``W1`` ``(m, r)``, ``W2`` ``(r, n)``), float64.

    With ``W1 = Q1 R1`` and ``W2^T = Q2 R2`` (reduced QR), ``W1 W2 = Q1 (R1 R2^T) Q2^T``, so the SVD of the small
    core ``R1 R2^T`` gives that of the product in ``O((m + n) r^2)`` instead of ``O(m n min(m, n))``.
    """
    a = w1.detach().cpu().double()
    b = w2.detach().cpu().double()
    q1, r1 = torch.linalg.qr(a)
    q2, r2 = torch.linalg.qr(b.T)
    u, s, vt = torch.linalg.svd(r1 @ r2.T, full_matrices=False)
    return (q1 @ u).numpy(), s.numpy(), (vt @ q2.T).numpy()


class DoubleLinear(nn.Module):
    """A linear layer of rank at most ``rank``: ``y = W1 W2 x + b``.

    Parameters
    ----------
    in_features, out_features : int
        ``n`` and ``m``: the weight ``W1 W2`` has shape ``(m, n)`` like ``nn.Linear.weight``.
    rank : int
        Inner dimension ``r`` of the factors ``W1 (m, r)`` and ``W2 (r, n)``.
    bias : bool, default True
    init : {"he", "glorot"} or float, default "he"
        Target variance ``v`` of each entry of ``W1 W2``: He ``2 / n``, Glorot
        ``2 / (n + m)``, or the given number.
    p : int, default 1
        Double-p-product initialisation: every entry of ``W1`` and ``W2`` is the
        product of ``p`` independent ``N(0, tau^2)`` samples with
        ``r tau^(4p) = v``, so every entry of ``W1 W2`` has variance ``v``
        (entries of ``W1 W2`` are uncorrelated but not independent). ``b = 0``.
    seed : int or None
        Seed of the initialisation; ``None`` draws from torch's global generator
        like ``nn.Linear`` does.
    device, dtype
        As for ``nn.Linear``. Initial values are drawn in float64 on the CPU and
        then converted, so a seed gives the same layer on every device.

    Attributes
    ----------
    weight1 : Parameter, shape (out_features, rank)  (``W1``)
    weight2 : Parameter, shape (rank, in_features)   (``W2``)
    bias : Parameter of shape (out_features,) or None

    Returns
    -------
    DoubleLinear
        ``weight`` (the product ``W1 W2``, read-only) behaves like
        ``nn.Linear.weight``; ``from_linear`` builds one from a trained layer.

    Raises
    ------
    InvalidTypeError
        A size, ``rank`` or ``p`` that is not an integer.
    InvalidInputError
        A size, ``rank`` or ``p`` below 1, or an ``init`` that is neither a
        rule name nor a positive variance; in ``from_linear``, a ``rank``
        above ``min(in_features, out_features)``.

    Examples
    --------
    >>> import torch
    >>> from relusv.torch import DoubleLinear
    >>> layer = DoubleLinear(4, 3, rank=2, seed=0)
    >>> layer.weight.shape, int(torch.linalg.matrix_rank(layer.weight.detach()))
    (torch.Size([3, 4]), 2)
    >>> layer(torch.randn(5, 4)).shape
    torch.Size([5, 3])
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 init: Union[str, float] = "he", p: int = 1, seed: Optional[int] = None,
                 device=None, dtype=None):
        super().__init__()
        self.in_features = _positive(in_features, "in_features")
        self.out_features = _positive(out_features, "out_features")
        self.rank = _positive(rank, "rank")
        self.p = _positive(p, "p")
        self.init = init_rule(init)
        kw = {"device": device, "dtype": dtype}
        self.weight1 = nn.Parameter(torch.empty(self.out_features, self.rank, **kw))
        self.weight2 = nn.Parameter(torch.empty(self.rank, self.in_features, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(seed)

    def target_variance(self) -> float:
        """``v``: the variance every entry of ``W1 W2`` gets at initialisation."""
        return target_variance(self.init, self.in_features, self.out_features)

    def factor_std(self) -> float:
        """``tau`` with ``rank * tau^(4p) = v``."""
        return factor_std(self.target_variance(), self.rank, self.p)

    def reset_parameters(self, seed: Optional[int] = None) -> None:
        """Double-p-product initialisation (MATH.md section 7); ``b = 0``."""
        reset_double_p_product_(self, self.target_variance(), seed)

    def svd(self) -> tuple:
        """The thin SVD ``(u, s, vt)`` of ``W1 W2`` from the factors (``factored_svd``), float64."""
        return factored_svd(self.weight1, self.weight2)

    @property
    def weight(self) -> torch.Tensor:
        """The product ``W1 W2`` of shape ``(out_features, in_features)`` (differentiable)."""
        return self.weight1 @ self.weight2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Two thin products cost rank * (in + out) per point instead of in * out.
        return nn.functional.linear(nn.functional.linear(x, self.weight2), self.weight1, self.bias)

    def parameter_count(self) -> int:
        return self.rank * (self.in_features + self.out_features) + (self.out_features if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"bias={self.bias is not None}, init={self.init!r}, p={self.p}")

    @classmethod
    def from_linear(cls, linear: nn.Module, rank: int, svd: Optional[tuple] = None) -> DoubleLinear:
        """The best rank-``rank`` approximation of a ``Linear`` or ``DoubleLinear`` as factors.

        ``W ~ U_r Sigma_r V_r^T`` by the engine's truncated SVD (``relusv.truncated_svd``,
        computed in float64), split evenly: ``W1 = U_r Sigma_r^{1/2}``,
        ``W2 = Sigma_r^{1/2} V_r^T``. The bias is copied. By Eckart-Young the
        spectral error is ``sigma_rank(W)``; at ``rank = min(in, out)`` the layer
        is reproduced up to rounding. Device and dtype follow ``linear``. A ``DoubleLinear``'s SVD comes from its
        factors (``factored_svd``); ``svd``: a precomputed ``(u, s, vt)`` of the weight.
        """
        weight = linear.weight.detach()
        m, n = weight.shape
        if svd is None and isinstance(linear, DoubleLinear):
            svd = linear.svd()
        w1, w2 = split_truncated_svd(weight, rank, svd)
        bias = getattr(linear, "bias", None)
        layer = cls(n, m, rank, bias=bias is not None, seed=0, device="cpu", dtype=torch.float64)
        with torch.no_grad():
            layer.weight1.copy_(w1)
            layer.weight2.copy_(w2)
            if bias is not None:
                layer.bias.copy_(bias.detach().cpu().double())
        return layer.to(device=weight.device, dtype=weight.dtype)

    def to_linear(self) -> nn.Linear:
        """An ``nn.Linear`` with weight ``W1 W2`` and the same bias (device and dtype kept)."""
        w = self.weight.detach()
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None,
                           device=w.device, dtype=w.dtype)
        with torch.no_grad():
            linear.weight.copy_(w)
            if self.bias is not None:
                linear.bias.copy_(self.bias.detach())
        return linear
