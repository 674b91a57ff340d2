"""The rules of harmonic pruning (MATH.md section 8) that every route shares (NumPy and torch).

- ``choose_cut``: which layer loses a direction next (the ReLU-aware least useful one).
- ``accuracy_floor``: the accuracy a cut must keep (a stated tolerance below the start, or an explicit floor).
- ``split_sets``: seeded disjoint selection / stopping / evaluation sets.
- ``Schedule``: which rank each layer is tried at next, so that the number of trials (each one a retraining)
  grows with the number of layers and the log of the ranks (``"bisection"``), or one rank at a time as in the
  paper (``"single"``).
"""
from __future__ import annotations

import math
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import InvalidInputError

SCHEDULES = ("bisection", "single")


def choose_cut(candidates: Sequence[Tuple[float, float]]) -> int:
    """Index of the candidate cut to make.

    ``candidates[j] = (accuracy, relative_singular_value)``: the selection accuracy with the cut made, and the
    largest singular value the cut removes divided by the layer's largest. The highest accuracy wins; ties go to
    the smallest relative singular value, then to the earliest candidate.
    """
    if not candidates:
        raise InvalidInputError("no candidate cut to choose from")
    return max(range(len(candidates)), key=lambda j: (candidates[j][0], -candidates[j][1], -j))


def accuracy_floor(start: float, tolerance: Optional[float], min_accuracy: Optional[float],
                   where: str = "the stopping set") -> float:
    """The accuracy every accepted cut keeps: ``min_accuracy`` when given, else ``start - tolerance``.

    Raises
    ------
    InvalidInputError
        For a tolerance or floor outside ``[0, 1]``, or a floor above ``start`` (the accuracy of the unpruned
        model on ``where``): no cut could ever be accepted.
    """
    if min_accuracy is not None:
        if not (isinstance(min_accuracy, (int, float)) and 0 <= min_accuracy <= 1):
            raise InvalidInputError(f"min_accuracy must be a fraction in [0, 1], got {min_accuracy!r}")
        if min_accuracy > start:
            raise InvalidInputError(
                f"min_accuracy {min_accuracy:.4f} is above the unpruned model's accuracy {start:.4f} on {where}: "
                f"no cut could be accepted (lower the floor, or give a tolerance relative to the start instead)")
        return float(min_accuracy)
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 <= tolerance <= 1):
        raise InvalidInputError(f"tolerance must be a fraction in [0, 1] (0.01 = one point), got {tolerance!r}")
    return float(start) - float(tolerance)


def split_sets(points: int, seed: int, fractions: Sequence[float]) -> List[np.ndarray]:
    """Seeded disjoint sorted index sets of ``range(points)`` with the given fractions (summing to at most 1;
    the last set takes the rest when they sum to 1). Every set has at least one point."""
    if points < len(fractions):
        raise InvalidInputError(f"{points} points cannot be split into {len(fractions)} non-empty sets")
    order = np.random.default_rng(seed).permutation(points)
    bounds = np.floor(np.cumsum([0.0, *fractions]) * points + 1e-9).astype(int)
    bounds = np.maximum(bounds, np.arange(len(bounds)))          # every set non-empty
    if abs(sum(fractions) - 1) < 1e-9:
        bounds[-1] = points
    return [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class Schedule:
    """Which rank each layer is tried at next.

    Each layer keeps ``rank`` (its accepted rank) and ``refused`` (the largest rank known to break the floor,
    initially ``min_rank - 1``); it is open while its undecided width ``w = rank - refused`` is at least 2.
    ``"bisection"`` proposes ``rank - max(1, floor(fraction * w))``: an accepted trial leaves the width
    ``w - step``, a refused one ``step``, so every trial shrinks the width by a constant factor and a layer of
    rank ``r`` takes ``O(log r)`` trials (exactly at most ``worst_trials(r - min_rank + 1)``; ``fraction`` 1/2 is
    plain bisection, at most ``ceil(log2 w)``; smaller fractions cut more gently before each retraining, at a
    constant factor more trials). ``"single"`` proposes ``rank - 1`` (the paper's one rank per iteration), at most
    ``r - min_rank`` trials.
    """

    def __init__(self, ranks: Dict[Hashable, int], min_rank: int, kind: str = "bisection", fraction: float = 0.25):
        if kind not in SCHEDULES:
            raise InvalidInputError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        if not (isinstance(fraction, (int, float)) and 0 < fraction <= 0.5):
            raise InvalidInputError(f"cut_fraction must lie in (0, 1/2], got {fraction!r}")
        self.kind, self.min_rank, self.fraction = kind, min_rank, float(fraction)
        self.rank = dict(ranks)
        self.refused = {k: min_rank - 1 for k in ranks}

    def open(self) -> List[Hashable]:
        return [k for k in self.rank if self.rank[k] - self.refused[k] >= 2]

    def proposal(self, layer: Hashable) -> int:
        if self.kind == "single":
            return self.rank[layer] - 1
        return self.rank[layer] - _step(self.rank[layer] - self.refused[layer], self.fraction)

    def accept(self, layer: Hashable, rank: int) -> None:
        self.rank[layer] = rank

    def refuse(self, layer: Hashable, rank: int) -> None:
        self.refused[layer] = rank

    def trial_bound(self) -> int:
        """The most trials the schedule can still make, over every sequence of accepted and refused cuts."""
        widths = [self.rank[k] - self.refused[k] for k in self.rank]
        if self.kind == "single":
            return sum(w - 1 for w in widths)
        return sum(worst_trials(w, self.fraction) for w in widths)


def _step(width: int, fraction: float) -> int:
    return max(1, math.floor(fraction * width))


def worst_trials(width: int, fraction: float = 0.25) -> int:
    """The most bisection trials a layer of undecided width ``width`` can take: ``T(1) = 0`` and
    ``T(w) = 1 + max(T(w - step), T(step))`` with ``step = max(1, floor(fraction w))``; ``O(log w)``."""
    table = [0, 0]
    for w in range(2, width + 1):
        step = _step(w, fraction)
        table.append(1 + max(table[w - step], table[step]))
    return table[width] if width >= 1 else 0
