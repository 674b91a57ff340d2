"""What every convolution helper of relusv.torch needs: one check of a Conv2d, one padding rule."""
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


def pad_input(x: torch.Tensor, padding: Tuple[int, int], padding_mode: str) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """``(x, padding)`` for ``conv2d``: zero padding is left to it, other modes are applied here (as ``nn.Conv2d``)."""
    if padding_mode == "zeros":
        return x, tuple(padding)
    pad = (padding[1], padding[1], padding[0], padding[0])
    return nn.functional.pad(x, pad, mode=padding_mode), (0, 0)
