"""Equal-size, seeded subsets of the correctly and incorrectly classified points.

The Gaussian mean width grows with the number of points, so the widths of two
groups are only comparable on sets of equal size (MATH.md section 6). For
repeat ``r`` a seeded random permutation of the probe indices ``0..N-1`` ranks
every point; each group's subset is its ``size`` best-ranked members. The
choice depends only on ``(seed, r, N)`` and on which points are correct, never
on batching or on how the probe set is split across processes.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

GROUPS = ("correct", "incorrect")
MIN_GROUP_SIZE = 2   # the width of a single point is 0: nothing to compare


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
