"""Labelled data for the report: loading and validation against a network.

Accepted forms: one ``.npz`` with arrays ``X`` (points as rows; trailing
dimensions are flattened) and ``y`` (integer class labels, or one-hot / class-probability
rows), or two ``.npy``
files, points first, labels second. The size every array declares is checked
against the bytes its file holds and the memory limit before it is read
(``relusv._npyfile``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import _validation
from .._npyfile import check_npy_file, check_npz_member
from ..errors import InvalidInputError
from ..memory import within_memory_limit
from .errors import ReportInputError


@dataclass(frozen=True)
class LabelledData:
    """Points ``x`` (N, ...) in float64 (flattened to (N, n) for an MLP) and labels ``y`` (N,) in int64."""

    x: np.ndarray
    y: np.ndarray
    source: str

    @property
    def points(self) -> int:
        return int(self.x.shape[0])


def _read(path: str):
    p = Path(path)
    if not p.is_file():
        raise ReportInputError(f"no such data file: {path}")
    check_npy_file(p, path)
    try:
        return np.load(p, allow_pickle=False)
    except Exception as error:  # numpy raises several types for unreadable files
        raise ReportInputError(f"cannot read {path} as a NumPy .npy/.npz file: {error}") from None


def _array(value, name: str, path: str) -> np.ndarray:
    if isinstance(value, np.lib.npyio.NpzFile):
        raise ReportInputError(f"{path} is a .npz archive; give {name} as a .npy file, or pass one .npz with X and y")
    return np.asarray(value)


def load_data(paths: Sequence[str]) -> tuple:
    """``(x, y, source)`` read from ``[data.npz]`` or ``[points.npy, labels.npy]``, not yet validated."""
    if len(paths) == 1:
        archive = _read(paths[0])
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ReportInputError(f"{paths[0]} is a single array; pass a .npz with arrays X and y, or two .npy "
                                   "files (points, then labels)")
        with archive:
            missing = [k for k in ("X", "y") if k not in archive.files]
            if missing:
                raise ReportInputError(f"{paths[0]} has no array named {missing[0]!r} (found: "
                                       f"{', '.join(archive.files) or 'none'}); expected X (points) and y (labels)")
            for key in ("X", "y"):
                check_npz_member(archive, key, f"{paths[0]}: array {key}")
            try:
                return archive["X"], archive["y"], paths[0]
            except Exception as error:  # object arrays (pickle refused), bad CRC, corrupt deflate streams
                raise ReportInputError(f"cannot read {paths[0]}: {error}") from None
    if len(paths) == 2:
        x = _array(_read(paths[0]), "the points", paths[0])
        y = _array(_read(paths[1]), "the labels", paths[1])
        return x, y, f"{paths[0]} + {paths[1]}"
    raise ReportInputError(f"--data takes one .npz (X, y) or two .npy files (points, labels), got {len(paths)} files")


def validate(x, y, input_dimension: Optional[int], classes: Optional[int], source: str) -> LabelledData:
    """Check points and labels against a network with ``input_dimension`` inputs and ``classes`` logits.

    ``input_dimension=None`` (a model that is not an MLP) keeps the points' shape; the model
    itself then says whether it takes them (``model_outputs``)."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.dtype == object or y.dtype == object:
        raise ReportInputError(f"{source}: arrays must be numeric")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x) or x.dtype == np.bool_:
        raise ReportInputError(f"{source}: points X must be real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ReportInputError(f"{source}: points X must have shape (N, features) with N >= 1, got {x.shape}")
    if input_dimension is not None:
        x = x.reshape(x.shape[0], -1)
    if input_dimension is not None and x.shape[1] != input_dimension:
        raise ReportInputError(f"{source}: points have {x.shape[1]} features but the model's first layer expects "
                               f"{input_dimension}")
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x.reshape(x.shape[0], -1)))[0]
        raise ReportInputError(f"{source}: points contain NaN or infinity at row {row}, column {col}")
    if y.ndim == 2 and y.shape[0] == x.shape[0] and y.shape[1] > 1 and y.dtype.kind in "biuf":
        try:   # one-hot rows or class probabilities, as relusv.torch.analyze takes them
            y = _validation.class_of_rows(y, y.dtype.kind == "f", f"{source}: labels y")
        except InvalidInputError as error:
            raise ReportInputError(str(error)) from None
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ReportInputError(f"{source}: labels y must have shape ({x.shape[0]},) (class indices) or "
                               f"({x.shape[0]}, classes) (one-hot rows) to match X, got {y.shape}")
    y = _validation.labels(y, classes, f"{source}: labels y")
    if x.dtype != np.float64:   # a uint8 or float32 X grows 8x or 2x in float64
        within_memory_limit(x.size * 8, f"{source}: the points in float64")
    return LabelledData(x.astype(np.float64), y, source)


def model_outputs(module, x: np.ndarray, source: str) -> int:
    """The number of logits ``module`` gives for the first points of ``x``; a user error when it cannot take them."""
    import torch

    from ..torch._layers import TrainingModes, forward, model_device

    modes = TrainingModes(module)
    try:
        module.eval()
        with torch.no_grad():
            out = forward(module, torch.from_numpy(np.ascontiguousarray(x[:2])), model_device(module))
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReportInputError(f"{source}: the model cannot take points of shape {tuple(x.shape[1:])}: "
                               f"{first}") from None
    finally:
        modes.restore()
    if not torch.is_tensor(out) or out.ndim != 2 or out.shape[1] < 2:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ReportInputError(f"{source}: the model's output for a batch has shape {shape}; the report needs "
                               "logits of shape (batch, classes) with at least 2 classes")
    return int(out.shape[1])
