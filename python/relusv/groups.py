"""Comparing the correctly and incorrectly classified points: equal-size seeded subsets and the statistics.

The Gaussian mean width grows with the number of points, so the widths of two
groups are only comparable on sets of equal size (MATH.md section 6). For
repeat ``r`` a seeded random permutation of the probe indices ``0..N-1`` ranks
every point; each group's subset is its ``size`` best-ranked members. The
choice depends only on ``(seed, r, N)`` and on which points are correct, never
on batching or on how the probe set is split across processes.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

GROUPS = ("correct", "incorrect")
MIN_GROUP_SIZE = 2   # the width of a single point is 0: nothing to compare
SEPARATION_CONFIDENCE = 0.9  # fraction of subsample pairs needed, with a gap beyond the spreads, for a verdict


def equal_size_subsets(correct, size: Optional[int] = None, repeats: int = 5,
                       seed: int = 0) -> Dict[str, List[np.ndarray]]:
    """Seeded index subsets of equal size for the two groups.

    Parameters
    ----------
    correct : array_like of bool, shape (N,)
        ``correct[i]`` says whether probe point ``i`` is classified correctly.
    size : int or None
        Points per subset; at most the size of the smaller group (the default).
    repeats : int
        Number of independent subsamples. A group with exactly ``size`` points
        has one subset (the whole group): every subsample would be the same.
    seed : int

    Returns
    -------
    dict
        ``{"correct": [idx, ...], "incorrect": [idx, ...]}``, sorted int64 index
        arrays into the probe set, all of the same length (empty lists when the
        smaller group is empty).
    """
    mask = np.asarray(correct, dtype=bool).reshape(-1)
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    members = {"correct": mask, "incorrect": ~mask}
    smallest = int(min(mask.sum(), (~mask).sum()))
    if size is not None and size < 1:
        raise ValueError(f"size must be positive, got {size}")
    s = smallest if size is None else min(int(size), smallest)
    out: Dict[str, List[np.ndarray]] = {g: [] for g in GROUPS}
    if s == 0:
        return out
    for r in range(repeats):
        order = np.random.default_rng([int(seed), r]).permutation(mask.size)
        for g in GROUPS:
            if members[g].sum() == s and out[g]:
                continue  # the whole group: every repeat would give the same subset
            ranked = order[members[g][order]]
            out[g].append(np.sort(ranked[:s]).astype(np.int64))
    return out


def comparison_reason(correct, size: int, minimum: int = MIN_GROUP_SIZE) -> str:
    """Why the two groups cannot be compared on sets of ``size`` points (``""`` when they can).

    A width needs at least ``minimum`` points; an empty group has nothing to compare.
    """
    mask = np.asarray(correct, dtype=bool).reshape(-1)
    n_correct = int(mask.sum())
    n_incorrect = int(mask.size - n_correct)
    if n_incorrect == 0:
        return f"all {mask.size} probe points are classified correctly: there is no incorrect set to compare"
    if n_correct == 0:
        return f"all {mask.size} probe points are misclassified: there is no correct set to compare"
    if size < minimum:
        return (f"only {min(n_correct, n_incorrect)} point(s) in the smaller group ({n_correct} correct, "
                f"{n_incorrect} incorrect): a width needs at least {minimum}")
    return ""


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.std(ddof=1)) if v.size > 1 else 0.0


def wider_fraction(correct: Sequence[float], incorrect: Sequence[float]) -> float:
    """Fraction of the pairs (one value of each list) in which the correct value is larger (ties count half)."""
    c = np.asarray(correct, dtype=np.float64)[:, None]
    i = np.asarray(incorrect, dtype=np.float64)[None, :]
    return float(np.mean((c > i) + 0.5 * (c == i)))


def comparison_verdict(c_mean: float, c_spread: float, i_mean: float, i_spread: float, confidence: float) -> str:
    """``"correct larger"`` / ``"incorrect larger"`` only when the gap exceeds both spreads together and at
    least ``SEPARATION_CONFIDENCE`` of the subsample pairs agree; else ``"within spread"``."""
    gap = c_mean - i_mean
    if abs(gap) > c_spread + i_spread:
        if gap > 0 and confidence >= SEPARATION_CONFIDENCE:
            return "correct larger"
        if gap < 0 and confidence <= 1 - SEPARATION_CONFIDENCE:
            return "incorrect larger"
    return "within spread"
