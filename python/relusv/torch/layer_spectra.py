"""ReLU singular values of a PyTorch layer over its inputs: Linear and Conv2d (MATH.md sections 2-3 and 9).

For a convolution ``phi(x) = ReLU(A_K x + b)`` and images ``X``, the
channel-rank ReLU singular values

    s_k^conv(phi; X) = min_{rank L_mat <= k} max_{x in X} ||ReLU(A_K x + b) - ReLU(A_L x + b)||

are the fully connected ones of ``W = K_mat`` over the patches of the
images (``torch.nn.functional.unfold``, ``P = H' W'`` rows per image) with
the maximum taken over groups of ``P`` consecutive rows of the
root-sum-square of the row errors: ``relusv.relu_singular_values(K_mat, b,
patches, group_size=P)``. A fully connected layer is the case ``P = 1``.
Every bound is the exact maximum error of a convolution with the same
geometry whose kernel matrix is ``U V`` (rank ``<= k``), so it can be
recomputed with ``conv2d`` from the returned factors.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInputError
from ..spectra import ReluSpectrum
from ._conv_geometry import block_diagonal_kernel, pad_input
from .discovery import fold_batchnorm as _fold_batchnorm
from .double_conv import DoubleConv2d
from .double_linear import DoubleLinear

MEMORY_FRACTION = 0.25
"""The patch matrix may take at most this fraction of the machine's physical memory."""


@dataclass(frozen=True)
class LayerReluSpectrum:
    """The ReLU bound curve of a layer over its inputs, with the layer's geometry.

    ``spectrum`` is the engine's ``relusv.ReluSpectrum`` (``ks``, ``sigma`` of
    the kernel matrix, ``truncation_bound``, ``bound``, ``source``, ``factors``
    ``(U, V)`` with ``L_mat = U @ V`` when requested); its attributes are also
    readable here (``result.bound``); for a convolution its ``data_max_norm``
    is the radius of the images, ``max_x (sum_p ||pi_p(x)||^2)^(1/2)``, so that
    ``truncation_bound <= sigma * data_max_norm`` (MATH.md section 2's chain,
    grouped). ``weight`` and ``bias`` are the analysed
    layer's (BatchNorm folded when ``bn`` was given), float64. ``group_size``
    is ``P`` (output positions per image, 1 for a Linear layer); ``images``
    the indices of the inputs used (all unless ``max_images`` sampled them).
    ``layers`` holds, per ``k``, the approximant as a ``DoubleConv2d`` /
    ``DoubleLinear`` (same geometry and bias, rank of its factors; None where
    the rank is 0) when ``return_double`` was set.

    Attributes
    ----------
    spectrum : relusv.ReluSpectrum
    weight, bias : torch.Tensor
    group_size : int
    images : numpy.ndarray
    layers : list of nn.Module or None, optional

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import relu_singular_values
    >>> _ = torch.manual_seed(0)
    >>> conv = nn.Conv2d(2, 4, 3)
    >>> result = relu_singular_values(conv, torch.randn(3, 2, 6, 6), ks=[0], seed=0)
    >>> result.group_size, tuple(result.weight.shape), len(result.images)
    (16, (4, 2, 3, 3), 3)
    """

    spectrum: ReluSpectrum
    weight: torch.Tensor
    bias: torch.Tensor
    group_size: int
    images: np.ndarray
    layers: Optional[List[Optional[nn.Module]]] = field(default=None, repr=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.spectrum, name)

    def __len__(self) -> int:
        return len(self.spectrum)


def _layer_kind(module: nn.Module) -> str:
    if isinstance(module, (nn.Linear, DoubleLinear)):
        return "linear"
    if isinstance(module, DoubleConv2d):
        return "conv2d"
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):
            raise InvalidInputError(f"padding = {module.padding!r}: give the padding as integers")
        return "conv2d"
    raise InvalidInputError(f"relu_singular_values takes nn.Linear, DoubleLinear, nn.Conv2d or DoubleConv2d, "
                            f"got {type(module).__name__}")


def _select_images(n: int, max_images: Optional[int], seed: Optional[int]) -> np.ndarray:
    if max_images is None or n <= max_images:
        return np.arange(n)
    if isinstance(max_images, bool) or not isinstance(max_images, (int, np.integer)) or max_images < 1:
        raise InvalidInputError(f"max_images must be a positive integer, got {max_images!r}")
    rng = np.random.default_rng(0 if seed is None else seed)
    return np.sort(rng.choice(n, size=int(max_images), replace=False))


def _physical_memory() -> float:
    return float(os.sysconf("SC_PHYS_PAGES")) * float(os.sysconf("SC_PAGE_SIZE"))


def conv_patches(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The patches ``pi_p(x)`` of every image as rows: ``(N P, C_in kh kw)``, image by image (MATH.md section 9)."""
    x, padding = pad_input(x, module.padding, module.padding_mode)
    patches = nn.functional.unfold(x, module.kernel_size, dilation=module.dilation, padding=padding,
                                   stride=module.stride)          # (N, C_in kh kw, P)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def _check_inputs(kind: str, module: nn.Module, x: torch.Tensor) -> None:
    if kind == "linear":
        if x.dim() != 2 or x.shape[1] != module.in_features:
            raise InvalidInputError(f"inputs must have shape (N, {module.in_features}) for this Linear layer, "
                                    f"got {tuple(x.shape)}")
    elif x.dim() != 4 or x.shape[1] != module.in_channels:
        raise InvalidInputError(f"inputs must have shape (N, {module.in_channels}, H, W) for this convolution, "
                                f"got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InvalidInputError("inputs hold no images or points")


def _double_layers(module: nn.Module, kind: str, weight: torch.Tensor, bias: torch.Tensor,
                   factors: Sequence) -> List[Optional[nn.Module]]:
    """Each approximant ``L_mat = U V`` as a double layer with the module's geometry and the (folded) bias."""
    layers: List[Optional[nn.Module]] = []
    for u, v in factors:
        rank = u.shape[1]
        if rank == 0:
            layers.append(None)
            continue
        if kind == "linear":
            layer = DoubleLinear(weight.shape[1], weight.shape[0], rank, seed=0, dtype=torch.float64)
            shapes = (layer.weight1.shape, layer.weight2.shape)
        else:
            layer = DoubleConv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), rank,
                                 stride=tuple(module.stride), padding=tuple(module.padding),
                                 dilation=tuple(module.dilation), padding_mode=module.padding_mode, seed=0,
                                 dtype=torch.float64)
            shapes = (layer.weight1.shape, layer.weight2.shape)
        with torch.no_grad():
            layer.weight1.copy_(torch.from_numpy(np.asarray(u)).reshape(shapes[0]))
            layer.weight2.copy_(torch.from_numpy(np.asarray(v)).reshape(shapes[1]))
            layer.bias.copy_(bias)
        layers.append(layer)
    return layers


def relu_singular_values(module: nn.Module, inputs: Any, ks: Optional[Sequence[int]] = None, *,
                         bn: Optional[nn.Module] = None, return_double: bool = False,
                         max_images: Optional[int] = None, seed: Optional[int] = None,
                         **options: Any) -> LayerReluSpectrum:
    """Certified upper bounds of the ReLU singular values of a Linear or Conv2d layer over its inputs.

    Parameters
    ----------
    module : nn.Linear, DoubleLinear, nn.Conv2d or DoubleConv2d
        A convolution may have any stride, padding (any ``padding_mode``),
        dilation and ``groups``: a grouped (or depthwise) convolution is
        analysed through its block-diagonal kernel matrix (``C_out x C_in kh kw``,
        zero outside the groups, MATH.md section 9), with approximants of rank
        ``<= k`` of any structure (not block diagonal); ``return_double`` is
        refused for it. The layer analysed is ``ReLU(module(x))``
        (``ReLU(bn(module(x)))`` with ``bn``).
    inputs : tensor or array
        What enters the layer: ``(N, in_features)`` or ``(N, C_in, H, W)``.
    ks : sequence of int, optional
        Which ``k`` (channel ranks, in ``[0, min(C_out, C_in kh kw) - 1]``); default all.
    bn : nn.BatchNorm1d / nn.BatchNorm2d, optional
        A BatchNorm after the layer, folded in its eval form (running
        statistics): ``K' = diag(gamma / sqrt(var + eps)) K``,
        ``b' = gamma (b - mu) / sqrt(var + eps) + beta`` (MATH.md section 9).
    return_double : bool
        Also return each approximant as a ``DoubleConv2d`` / ``DoubleLinear``
        (implies the factors are kept).
    max_images : int, optional
        Use a random subset of this many images (drawn with ``seed``; their
        indices are in the result), so that the ``N P`` patch rows fit in
        memory. Without it, all images are used, and a patch matrix larger
        than a quarter of the physical memory is refused before it is built.
    seed : int, optional
        Seeds the image sample and the engine (mini-batch order).
    **options
        Passed to ``relusv.relu_singular_values`` (``max_steps``,
        ``time_budget``, ``threads``, ``fit_stride``, ``return_factors``,
        ``progress``, ...); ``leaky_slope`` for a leaky ReLU.

    Returns
    -------
    LayerReluSpectrum
        The curve (``bound``, ``sigma``, ``source``, ...) with the layer's
        (folded) weight and bias, ``group_size = P`` and the images used.

    Raises
    ------
    InvalidInputError
        A module of another type, string padding, inputs of the wrong shape or
        without points, a convolution with no output position on the input,
        ``max_images`` not a positive integer, ``return_double`` for a grouped
        convolution, or an invalid engine option or ``k``.
    MemoryLimitError
        The patch matrix would exceed the memory limit (use ``max_images``).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import relu_singular_values
    >>> _ = torch.manual_seed(0)
    >>> layer, x = nn.Linear(4, 3), torch.randn(20, 4)
    >>> result = relu_singular_values(layer, x, ks=[0, 1], seed=0)
    >>> result.ks.tolist(), result.group_size
    ([0, 1], 1)
    >>> bool(result.bound[0] >= result.bound[1] >= 0)
    True
    """
    from .. import relu_singular_values as engine

    kind = _layer_kind(module)
    x = torch.as_tensor(inputs).detach().cpu()
    if not x.is_floating_point():
        x = x.double()
    _check_inputs(kind, module, x)
    chosen = _select_images(x.shape[0], max_images, seed)
    if len(chosen) < x.shape[0]:
        x = x[torch.from_numpy(chosen)]
    groups = int(getattr(module, "groups", 1))
    if groups > 1 and return_double:
        raise InvalidInputError(
            f"return_double: the approximants of a grouped convolution (groups = {groups}) are rank-k matrices of "
            "its block-diagonal kernel matrix, which mix the groups; no DoubleConv2d (a dense k-channel "
            "bottleneck) of the grouped geometry represents them. Use return_factors=True for the factors")
    weight = block_diagonal_kernel(module.weight.detach().double().cpu(), groups) if groups > 1 else \
        module.weight.detach().cpu()
    bias = module.bias.detach().cpu() if getattr(module, "bias", None) is not None else None
    if bn is not None:
        weight, bias = _fold_batchnorm(weight, bias, bn)
    weight64 = weight.double()
    bias64 = bias.double() if bias is not None else torch.zeros(weight.shape[0], dtype=torch.float64)
    dtype = torch.float32 if x.dtype == torch.float32 and weight.dtype == torch.float32 and bn is None and groups == 1 \
        else torch.float64
    if kind == "linear":
        rows, group_size = x.to(dtype), 1
    else:
        h_out = _output_size(module, x.shape[2], 0)
        w_out = _output_size(module, x.shape[3], 1)
        group_size = h_out * w_out
        if h_out < 1 or w_out < 1:     # both negative would multiply to a positive count
            raise InvalidInputError(f"the convolution has no output position on a {x.shape[2]} x {x.shape[3]} input")
        n_cols = weight.shape[1] * weight.shape[2] * weight.shape[3]
        needed = float(x.shape[0]) * group_size * n_cols * (4 if dtype == torch.float32 else 8)
        if needed > MEMORY_FRACTION * _physical_memory():
            raise InvalidInputError(
                f"the patches of {x.shape[0]} images ({x.shape[0]} x {group_size} rows of {n_cols}) need "
                f"{needed / 2**30:.1f} GiB, more than a quarter of this machine's memory; pass max_images "
                f"(a seeded sample of the images)")
        with torch.no_grad():
            rows = conv_patches(module, x.to(dtype))
    w_mat = weight64.reshape(weight64.shape[0], -1).to(dtype)
    if return_double:
        options["return_factors"] = True
    spectrum = engine(w_mat.numpy(), bias64.to(dtype).numpy(), rows.numpy(), ks, seed=seed,
                      group_size=group_size, **options)
    if group_size > 1:
        # The chain t_k <= sigma_k(K_mat) * radius holds with the radius of the points (images), the
        # root-sum-square of their patch norms, not with the largest single patch row.
        radius = float(rows.double().square().sum(1).reshape(-1, group_size).sum(1).sqrt().max())
        spectrum = dataclasses.replace(spectrum, data_max_norm=radius)
    layers = None
    if return_double:
        layers = _double_layers(module, kind, weight64, bias64, spectrum.factors)
    return LayerReluSpectrum(spectrum, weight64, bias64, group_size, chosen, layers)


def _output_size(module: nn.Module, size: int, axis: int) -> int:
    """``H'`` (or ``W'``) of the convolution on an input of ``size`` along ``axis``."""
    k, s, p, d = module.kernel_size[axis], module.stride[axis], module.padding[axis], module.dilation[axis]
    return (size + 2 * p - d * (k - 1) - 1) // s + 1
