"""The collectives the monitor needs, for one process or a ``torch.distributed`` group.

Probe batches are dealt round-robin: batch ``j`` of the probe set (cut at the
same ``batch_size`` on every rank) goes to rank ``j mod world_size``. Every
batch is therefore the same tensor, through the same model, as in a single
process, and merging per-rank GMW accumulators by MAX / MIN of their running
extremes reproduces the single-process state value for value.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

from ..errors import InvalidInputError


class SingleProcess:
    """No communication: the identity collectives of a world of one."""

    world_size = 1
    rank = 0

    def shard(self, batches: int) -> range:
        return range(batches)

    def all_reduce(self, array: np.ndarray, op: str) -> np.ndarray:
        return array

    def all_gather_object(self, obj: Any) -> List[Any]:
        return [obj]

    def broadcast_object(self, obj: Any) -> Any:
        return obj

    def agree(self, sizes: Dict[str, int]) -> None:
        """Checks that every rank has the same ``sizes`` (probe points, batch size, ...); nothing to check
        in one process."""


class ProcessGroup(SingleProcess):
    """Collectives over an initialised ``torch.distributed`` group (gloo, nccl, ...)."""

    _OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}

    def __init__(self, group: Optional[Any] = None):
        self.group = group
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        # NCCL only reduces tensors that live on the GPU.
        self.device = torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend(group) == "nccl" else torch.device("cpu")

    def shard(self, batches: int) -> range:
        return range(self.rank, batches, self.world_size)

    def all_reduce(self, array: np.ndarray, op: str) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(array).copy()).to(self.device)
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, self._OPS[op]), group=self.group)
        return tensor.cpu().numpy()

    def all_gather_object(self, obj: Any) -> List[Any]:
        out: List[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def agree(self, sizes: Dict[str, int]) -> None:
        """Checks that every rank has the same ``sizes`` before any collective whose shape depends on them.

        The ranks exchange the sizes in one ``all_gather`` of a fixed-shape tensor (one entry per size,
        the same on every rank whatever the sizes), so every rank raises the same error instead of
        entering a collective of mismatched shapes (which gloo ends with SIGABRT).

        Raises
        ------
        InvalidInputError
            On every rank, naming the first size that differs and each rank's value.
        """
        mine = torch.tensor(list(sizes.values()), dtype=torch.int64, device=self.device)
        gathered = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(gathered, mine, group=self.group)
        table = torch.stack(gathered).cpu().numpy()
        for column, name in enumerate(sizes):
            values = table[:, column]
            if (values != values[0]).any():
                per_rank = ", ".join(f"rank {r}: {int(v)}" for r, v in enumerate(values))
                raise InvalidInputError(f"the ranks differ in their {name} ({per_rank}); every rank must pass the "
                                        "same probe set (it is sharded by batch across the ranks)")

    def broadcast_object(self, obj: Any) -> Any:
        box = [obj]
        dist.broadcast_object_list(box, src=dist.get_global_rank(self.group, 0) if self.group is not None else 0,
                                   group=self.group)
        return box[0]


def communicator(distributed: Optional[bool], group: Optional[Any] = None) -> SingleProcess:
    """``ProcessGroup`` when asked for (or, with ``None``, when a group of several ranks is initialised)."""
    initialised = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = initialised and dist.get_world_size(group) > 1
    if not distributed:
        return SingleProcess()
    if not initialised:
        raise RuntimeError("distributed=True but torch.distributed is not initialised; "
                           "call torch.distributed.init_process_group first")
    return ProcessGroup(group)
