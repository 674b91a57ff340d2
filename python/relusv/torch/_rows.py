"""The activations ``analyze`` keeps: rows of the chosen probe points, gathered across batches."""
from __future__ import annotations

from typing import Dict, Hashable

import numpy as np
import torch

from .. import memory
from ..errors import InvalidInputError


class RowStore:
    """Per key, the flattened rows of ``total`` chosen points in one array allocated at the key's first batch
    and filled batch by batch (one copy from torch, no concatenation at the end). Each allocation is checked
    against ``relusv.memory_limit()`` together with those before it; bfloat16 is kept as float32 (NumPy has
    no bfloat16; float32 holds it exactly)."""

    def __init__(self, total: int):
        self.total = int(total)
        self.bytes = 0
        self.arrays: Dict[Hashable, np.ndarray] = {}
        self.filled: Dict[Hashable, int] = {}

    def keep(self, key: Hashable, tensor: torch.Tensor) -> None:
        """Appends the rows of ``tensor`` (a batch's chosen points, any shape) under ``key``."""
        rows = tensor.detach().reshape(tensor.shape[0], -1).cpu()
        if rows.dtype == torch.bfloat16:
            rows = rows.float()
        values = rows.numpy()
        dest = self.arrays.get(key)
        if dest is None:
            size = self.total * values.shape[1] * values.dtype.itemsize
            memory.within_memory_limit(self.bytes + size, f"the activations kept for analysis (at {key})")
            dest = self.arrays[key] = np.empty((self.total, values.shape[1]), values.dtype)
            self.bytes += size
            self.filled[key] = 0
        start = self.filled[key]
        if values.shape[1] != dest.shape[1] or start + values.shape[0] > self.total:
            raise InvalidInputError(f"the value at {key} has {values.shape[1]} entries per point in one batch and "
                                    f"{dest.shape[1]} in another")
        dest[start:start + values.shape[0]] = values
        self.filled[key] = start + values.shape[0]

    def result(self) -> Dict[Hashable, np.ndarray]:
        """The arrays, each with the rows filled so far."""
        return {key: array[:self.filled[key]] for key, array in self.arrays.items()}
