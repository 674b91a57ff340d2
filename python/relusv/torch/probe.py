"""Probe data cut into batches: tensors, arrays, memmaps, map-style datasets or data loaders.

Every probe pass of relusv.torch (the monitor, ``analyze``, accuracies)
reads its data through here, so the accepted forms and their checks have one
owner.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

import numpy as np
import torch

from .. import _arrays, _validation
from ..errors import InvalidInputError, InvalidTypeError


class ProbeSet:
    """The probe points cut into batches of fixed size, by global index.

    ``x`` and ``y`` are anything sliceable with ``len`` (tensors, NumPy arrays
    or memmaps), or ``x`` is a map-style dataset of ``(input, target)`` pairs
    and ``y`` is None.
    """

    def __init__(self, x: Any, y: Any, batch_size: int):
        if batch_size < 1:
            raise InvalidInputError(f"batch_size must be positive, got {batch_size}")
        if not (hasattr(x, "__len__") and hasattr(x, "__getitem__")):
            raise InvalidTypeError(f"the probe inputs must support len() and indexing, got {type(x).__name__}")
        if y is not None and len(x) != len(y):
            raise InvalidInputError(f"the probe set has {len(x)} inputs but {len(y)} targets")
        if len(x) == 0:
            raise InvalidInputError("the probe set is empty")
        _arrays.require_labels(x, y)
        self.x, self.y, self.batch_size = x, y, int(batch_size)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def batches(self) -> int:
        return -(-len(self) // self.batch_size)

    def batch(self, j: int) -> Tuple[int, int, torch.Tensor, torch.Tensor]:
        """``(start, stop, inputs, targets)`` of batch ``j``."""
        a = j * self.batch_size
        b = min(len(self), a + self.batch_size)
        if self.y is None:
            from torch.utils.data import default_collate

            batch = default_collate([self.x[i] for i in range(a, b)])
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                keys = f" (keys {', '.join(map(str, batch))})" if isinstance(batch, dict) else ""
                raise InvalidTypeError(f"a probe dataset must yield (input, target) pairs, got a "
                                       f"{type(batch).__name__}{keys}; pass X and y, or a dataset of pairs")
            inputs, targets = batch[:2]
        else:
            inputs, targets = self.x[a:b], self.y[a:b]
        inputs = _tensor(inputs)
        _validation.finite_array(inputs, f"the probe inputs {a}..{b - 1} (index within them)")
        return a, b, inputs, _tensor(targets)

    def iterate(self) -> Iterator[Tuple[int, int, torch.Tensor, torch.Tensor]]:
        """Every batch in order, as ``(start, stop, inputs, targets)``."""
        for j in range(self.batches):
            yield self.batch(j)


def _tensor(values: Any) -> torch.Tensor:
    """A tensor of one batch; NumPy slices (of memmaps too) are copied, since torch needs writable memory."""
    if torch.is_tensor(values):
        return values
    array = np.array(values)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(f"the probe data must be numbers (tensors or numeric arrays), got dtype {array.dtype}"
                               + (" (string labels: map them to class indices first)" if array.dtype.kind in "US"
                                  else ""))
    return torch.as_tensor(array)


def class_targets(targets: torch.Tensor, output: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Class indices of ``targets`` as int64, checked by ``_validation.labels`` (integers, or floats that are
    finite and integral, never truncated; with the model's ``output`` (logits), within ``[0, classes)``).
    One-hot or probability rows give their argmax; any other matrix is refused."""
    if targets.ndim == 2 and targets.shape[1] > 1:   # one-hot or probabilities
        rows = targets.detach().to(device="cpu", dtype=torch.float64).numpy()
        classes = _validation.class_of_rows(rows, targets.is_floating_point(), "the probe targets")
        return torch.from_numpy(classes).to(targets.device)
    labels = targets.reshape(targets.shape[0])
    logits = torch.is_tensor(output) and output.ndim == 2 and output.shape[1] > 1
    classes = int(output.shape[1]) if logits else None
    return torch.from_numpy(_validation.labels(labels, classes, "the probe labels")).to(labels.device)


class LoaderProbe:
    """Probe data from an iterable of ``(inputs, targets, ...)`` batches (a ``DataLoader``).

    Its length is known after the first pass. A second pass must yield the
    same points in the same order (no shuffling, no random augmentation): the
    targets of every later pass and a fingerprint of each input (``_fingerprint``)
    are compared with the first's.
    """

    def __init__(self, loader: Any):
        self.loader = loader
        self.points = None
        self.targets = None
        self.fingerprints = None

    @staticmethod
    def _fingerprint(inputs: torch.Tensor) -> torch.Tensor:
        """Per point, the sum and the sum of squares of its entries in float64: the same for the same
        tensor, different for another point (labels alone miss a shuffle where the classes repeat)."""
        flat = inputs.detach().reshape(inputs.shape[0], -1).to(device="cpu", dtype=torch.float64)
        return torch.stack([flat.sum(1), flat.square().sum(1)], 1)

    def __len__(self) -> int:
        if self.points is None:
            raise RuntimeError("internal error: the loader's length is known after the first pass")
        return self.points

    def iterate(self) -> Iterator[Tuple[int, int, torch.Tensor, torch.Tensor]]:
        start = 0
        seen, prints = [], []
        for batch in self.loader:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise InvalidTypeError("a probe DataLoader must yield (inputs, targets) pairs")
            inputs, targets = _tensor(batch[0]), _tensor(batch[1])
            _validation.finite_array(inputs, f"the probe inputs {start}..{start + inputs.shape[0] - 1} "
                                             "(index within them)")
            if inputs.shape[0] != targets.shape[0]:
                raise InvalidInputError(f"a probe batch has {inputs.shape[0]} inputs but {targets.shape[0]} targets")
            stop = start + inputs.shape[0]
            if self.targets is not None:
                if (stop > self.targets.shape[0]
                        or not torch.equal(class_targets(targets).cpu(), self.targets[start:stop])
                        or not torch.equal(self._fingerprint(inputs), self.fingerprints[start:stop])):
                    raise InvalidInputError("the probe DataLoader yields other points or another order on a second "
                                            "pass; use shuffle=False and no random transforms")
            else:
                seen.append(class_targets(targets).cpu())
                prints.append(self._fingerprint(inputs))
            yield start, stop, inputs, targets
            start = stop
        if self.targets is None:
            if start == 0:
                raise InvalidInputError("the probe set is empty")
            self.points = start
            self.targets = torch.cat(seen)
            self.fingerprints = torch.cat(prints)
        elif start != self.points:
            raise InvalidInputError(f"the probe DataLoader yielded {start} points on a second pass, {self.points} on the "
                             "first")


def probe_data(x: Any, y: Any, batch_size: int):
    """``LoaderProbe`` for a data loader (any iterable without ``__getitem__``), else ``ProbeSet``."""
    if y is None and hasattr(x, "__iter__") and not hasattr(x, "__getitem__"):
        if iter(x) is x:   # a generator or another iterator: it would be empty on the second pass
            raise InvalidTypeError(f"the probe set is a one-shot iterator ({type(x).__name__}), but it is read twice: "
                                   "pass a DataLoader, a dataset of pairs, or arrays")
        return LoaderProbe(x)
    return ProbeSet(x, y, batch_size)
