"""The activations ``analyze`` keeps: rows of the chosen probe points, gathered across batches."""
from __future__ import annotations

from typing import Dict, Hashable, List, Optional

import numpy as np
import torch

from .. import memory
from ..errors import InvalidInputError


class RowStore:
    """Per key, the flattened rows of ``total`` chosen points in one array allocated at the key's first batch
    and filled batch by batch (one copy from torch, no concatenation at the end). Each allocation is checked
    against ``relusv.memory_limit()`` together with those before it, in this store and in the stores sharing
    its ``spent`` count; bfloat16 is kept as float32 (NumPy has no bfloat16; float32 holds it exactly)."""

    def __init__(self, total: int, spent: Optional[List[int]] = None):
        self.total = int(total)
        self.spent = [0] if spent is None else spent   # bytes allocated by every store sharing the count
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
            memory.within_memory_limit(self.spent[0] + size, f"the activations kept for analysis (at {key})")
            dest = self.arrays[key] = np.empty((self.total, values.shape[1]), values.dtype)
            self.spent[0] += size
            self.filled[key] = 0
        start = self.filled[key]
        if values.shape[1] != dest.shape[1]:
            raise InvalidInputError(f"the value at {key} has {values.shape[1]} entries per point in one batch and "
                                    f"{dest.shape[1]} in another")
        if start + values.shape[0] > self.total:
            raise InvalidInputError(f"the value at {key} was computed more than once per point (a module called "
                                    "twice in one forward pass, inside a module that does not trace): name the "
                                    "layers to analyse with layers=[...] without it")
        dest[start:start + values.shape[0]] = values
        self.filled[key] = start + values.shape[0]

    def result(self) -> Dict[Hashable, np.ndarray]:
        """The arrays, each with the rows filled so far."""
        return {key: array[:self.filled[key]] for key, array in self.arrays.items()}
