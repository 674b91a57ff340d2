"""What every convolution helper of relusv.torch needs: one check of a Conv2d, one padding rule, one dense form
of a grouped kernel."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..errors import InvalidInputError


def check_conv2d(conv: nn.Conv2d) -> None:
    """Refuses what the kernel-matrix view of MATH.md section 9 does not cover: groups != 1, string padding."""
    if conv.groups != 1:
        raise InvalidInputError(f"groups = {conv.groups}: the kernel-matrix quantities (channel-rank bounds, "
                                "double layers, pruning) need groups = 1 (one kernel matrix); the operator's "
                                "spectrum and norm accept groups: relusv.conv_singular_values, "
                                "relusv.torch.conv_operator_norm")
    if isinstance(conv.padding, str):
        raise InvalidInputError(f"padding = {conv.padding!r}: give the padding as integers")


def integer_padding(conv: nn.Module) -> Tuple[int, int]:
    """The padding of a Conv2d as ``(ph, pw)`` on each side: ``padding='valid'`` is ``(0, 0)``, ``'same'`` half of
    ``dilation (kernel - 1)``; an even total (``'same'`` with an even kernel pads one side more) is refused."""
    padding = conv.padding
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(t % 2 for t in totals):
            raise InvalidInputError(f"padding='same' with an even kernel pads asymmetrically: not supported "
                                    f"({tuple(conv.kernel_size)})")
        return tuple(t // 2 for t in totals)
    return tuple(padding)


def pad_input(x: torch.Tensor, padding: Tuple[int, int], padding_mode: str) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """``(x, padding)`` for ``conv2d``: zero padding is left to it, other modes are applied here (as ``nn.Conv2d``)."""
    if padding_mode == "zeros":
        return x, tuple(padding)
    pad = (padding[1], padding[1], padding[0], padding[0])
    return nn.functional.pad(x, pad, mode=padding_mode), (0, 0)


def block_diagonal_kernel(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped convolution's kernel ``w`` (``C_out x C_in/G x kh x kw``) as the dense ``C_out x C_in x kh x kw``
    kernel of the same operator: block ``g`` of the output sees only block ``g`` of the input, zeros elsewhere
    (MATH.md section 9). Its ``reshape(C_out, -1)`` is the kernel matrix of every relusv.torch quantity of a
    grouped layer; ``w`` itself for ``groups = 1``."""
    if groups == 1:
        return w
    out_per, in_per = w.shape[0] // groups, w.shape[1]
    dense = torch.zeros(w.shape[0], in_per * groups, *w.shape[2:], dtype=w.dtype, device=w.device)
    for g in range(groups):
        dense[g * out_per:(g + 1) * out_per, g * in_per:(g + 1) * in_per] = w[g * out_per:(g + 1) * out_per]
    return dense
