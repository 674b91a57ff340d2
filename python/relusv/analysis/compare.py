"""The calibrated comparison of the correctly and incorrectly classified points (MATH.md section 11).

One procedure for every two-set comparison relusv states (GMW at a layer's
input or output, the exact top ReLU singular value ``s_0``):

1. **Design** (``design``, shared by every site of one analysis): each group
   enters with at most ``max_group_size`` of its points (a seeded random
   subset: the *pool*); the compared sets have ``n = min`` of the two pool
   sizes (or ``group_size`` where smaller). ``repeats`` subsample pairs
   ``(C'_r, I'_r)`` of ``n`` points each (a pool of exactly ``n`` points is
   used whole in every repeat). ``permutations`` random relabellings of the
   pooled points into groups of the pools' sizes, each subsampled the same
   way; optionally ``bootstrap`` resamplings with replacement of the points
   of every observed pair.
2. **A set functional** ``f`` of a set of rows of a per-point matrix ``V``
   (``L x S``, one row per pooled point): ``f(A) = reduce(max_A V, min_A V)``,
   column-wise extremes. The GMW: ``V = Z G^T`` (the projections of the pooled
   points ``Z`` on the Gaussian directions ``G`` of ``relusv.gmw`` with the
   analysis seed, the same for both groups: paired) and ``reduce`` the
   trimmed mean of ``max - min`` over the directions, so ``f(A)`` equals
   ``relusv.gmw(Z[A], samples, seed, trim)``. ``s_0``: ``V`` one column of
   per-point norms ``||phi(x) - phi_0||``, ``reduce`` the maximum.
3. **Statistic** ``D = mean_r (f(C'_r) - f(I'_r))``; two-sided permutation
   p-value ``p = (1 + #{b : |D*_b| >= |D|}) / (B + 1)`` with ``D*_b`` the same
   average on relabelling ``b``; effect ``D / mean(f)`` (``mean(f)`` over both
   groups and all repeats) with an interval at level ``1 - alpha``: by
   default ``effect +- z_{1 - alpha/2} sd(D*) / mean(f)``, the spread of ``D``
   over random equal-size sets of the pooled points (its sampling spread
   where the groups do not differ); with ``bootstrap > 0`` instead the
   percentile interval of the bootstrap over points. The bootstrap of a
   maximum / minimum is known to be inconsistent (a resample repeats points,
   and its extremes are the sample's with probability about 0.63), and it
   covers too rarely here: on planted effects in the digits MLP (bench/findings.py)
   the 95 % bootstrap interval held the true effect in 76 % of the runs, the
   permutation-spread interval in 98 %.
4. **Family**: the p-values stated together are Holm-adjusted (``holm``); the
   verdict (``verdict``) is ``correct larger`` / ``incorrect larger`` where
   the adjusted ``p < alpha``, else ``no difference shown``.

Every random choice derives from ``seed`` through ``numpy.random.SeedSequence``
(one child stream each for pools, subsamples, relabellings and bootstrap), so
different seeds give non-overlapping streams and a fixed seed the same result.
The work per site is one product ``Z G^T`` and then only maxima and minima
over row subsets of it.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._arrays import scale_exponent
from ..errors import InvalidInputError, MemoryLimitError
from .directions import shared_directions

GROUPS = ("correct", "incorrect")
MIN_GROUP_SIZE = 2          # the width of a single point is 0: nothing to compare
DEFAULT_REPEATS = 5
DEFAULT_PERMUTATIONS = 500  # a count given by default; also the least count and first stage of one from the family
PERMUTATION_MARGIN = 2      # a count from the family: Holm's smallest adjusted p, m / (B + 1), at most alpha / 2
DEFAULT_BOOTSTRAP = 0      # 0: the interval from the permutation spread (see above)
DEFAULT_ALPHA = 0.05
DEFAULT_MAX_GROUP_SIZE = 500
VERDICTS = ("correct larger", "incorrect larger", "no difference shown")
_MAX_INDICES = 1 << 26      # index values a design may hold (256 MiB of int32)
_BLOCK = 1 << 17            # values of the running extremes per block of set evaluations


def spread(values: Sequence[float]) -> float:
    """Sample standard deviation (``ddof=1``; 0 for a single value): the spread of repeated values, computed on
    the values divided by their largest magnitude (exact, a power of two) so that no square overflows (GMW of
    points of 1e155 is finite, its square is not)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return 0.0
    exponent = scale_exponent(v)
    return float(np.ldexp(np.ldexp(v, -exponent).std(ddof=1), exponent))


@dataclass
class Design:
    """The index sets of one comparison family, shared by all its sites.

    ``pool`` holds the probe indices of the pooled points (sorted) and
    ``labels`` whether each is correct; ``observed[r, g]`` (``g`` 0 correct,
    1 incorrect) the positions in ``pool`` of repeat ``r``'s compared set;
    ``permuted[b, r, g]`` the same on relabelling ``b``; ``resampled[b, r, g]``
    bootstrap resamples (positions in ``pool``) of the observed sets.
    ``reason`` says why the groups are not compared (``""`` when they are).
    """

    correct: np.ndarray
    pool: np.ndarray
    labels: np.ndarray
    size: int
    repeats: int
    observed: np.ndarray
    permuted: np.ndarray
    resampled: np.ndarray
    alpha: float
    reason: str = ""
    settings: Dict[str, object] = field(default_factory=dict)

    @property
    def comparable(self) -> bool:
        return not self.reason

    @property
    def whole(self) -> Tuple[bool, bool]:
        """Per group: is its pool exactly the compared size (the same whole set in every repeat, also after
        relabelling, which keeps the pools' sizes)?"""
        n_correct = int(self.labels.sum())
        return n_correct == self.size, self.labels.size - n_correct == self.size

    def subsets(self) -> Dict[str, List[np.ndarray]]:
        """Probe indices of every repeat's compared set per group (sorted)."""
        if not self.comparable:
            return {g: [] for g in GROUPS}
        return {g: [np.sort(self.pool[self.observed[r, k]]) for r in range(self.repeats)]
                for k, g in enumerate(GROUPS)}

    def chosen(self) -> np.ndarray:
        """The probe indices whose activations the comparisons need: the pool (sorted)."""
        return self.pool

    def pair(self, r: int) -> Dict[str, np.ndarray]:
        """Repeat ``r``'s probe indices per group (sorted)."""
        return {g: np.sort(self.pool[self.observed[r, k]]) for k, g in enumerate(GROUPS)}


def comparison_reason(correct, size: int, minimum: int = MIN_GROUP_SIZE, group_size: Optional[int] = None) -> str:
    """Why the two groups cannot be compared on sets of ``size`` points (``""`` when they can); ``group_size``
    the caller's cap on ``size``, when it set one."""
    mask = np.asarray(correct, dtype=bool).reshape(-1)
    n_correct = int(mask.sum())
    n_incorrect = int(mask.size - n_correct)
    if n_incorrect == 0:
        return f"all {mask.size} probe points are classified correctly: there is no incorrect set to compare"
    if n_correct == 0:
        return f"all {mask.size} probe points are misclassified: there is no correct set to compare"
    if size < minimum and group_size is not None and group_size < minimum:
        return f"group_size = {group_size}: a width needs sets of at least {minimum} points"
    if size < minimum:
        return (f"only {min(n_correct, n_incorrect)} point(s) in the smaller group ({n_correct} correct, "
                f"{n_incorrect} incorrect): a width needs at least {minimum}")
    return ""


def _positive(value, name: str, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _subsamples(rng: np.random.Generator, members: np.ndarray, count: int, size: int) -> np.ndarray:
    """``(count, size)`` rows: ``size`` distinct entries of each row of ``members`` (``(count, m)`` or ``(m,)``)."""
    members = np.broadcast_to(members, (count, members.shape[-1]))
    if members.shape[1] == size:
        return np.ascontiguousarray(members)
    keys = rng.random(members.shape)
    order = np.argpartition(keys, size - 1, axis=1)[:, :size]
    return np.take_along_axis(members, order, axis=1)


def _correct_mask(correct) -> np.ndarray:
    """``correct`` as a 1-D boolean array; refuses other shapes and values other than booleans or 0 / 1."""
    mask = np.asarray(correct)
    if mask.ndim != 1 or mask.dtype.kind not in "biu" or (mask.dtype.kind != "b" and not np.isin(mask, (0, 1)).all()):
        raise InvalidInputError(f"correct must be a 1-D array of booleans (or 0 / 1), got shape {mask.shape} and "
                                f"dtype {mask.dtype}")
    return mask.astype(bool)


def design(correct, *, repeats: int = DEFAULT_REPEATS, permutations: Optional[int] = DEFAULT_PERMUTATIONS,
           bootstrap: int = DEFAULT_BOOTSTRAP, group_size: Optional[int] = None,
           max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE, alpha: float = DEFAULT_ALPHA,
           seed: int = 0, first_stage: int = 0) -> Design:
    """The pools, compared sets, relabellings and bootstrap resamples of one analysis (MATH.md section 11).

    Parameters
    ----------
    correct : array_like of bool, shape (N,)
        Whether probe point ``i`` is classified correctly.
    repeats : int
        Subsample pairs averaged in the statistic (and in every relabelling).
    permutations : int or None
        Random relabellings of the pooled points (the permutation distribution). None: the count is
        to be drawn from the size of the comparison family (``for_family``); until then the design holds
        ``DEFAULT_PERMUTATIONS`` relabellings and ``settings["permutations"]`` is None.
    bootstrap : int
        0 (default): the effect's interval from the permutation spread; otherwise this many bootstrap
        resamples (with replacement, within every observed set) give a percentile interval.
    group_size : int, optional
        Points per compared set; default (and upper limit) the smaller pool.
    max_group_size : int or None
        Each group enters with at most this many points, a seeded random subset (None: every point).
    alpha : float in (0, 1)
        Level of the verdicts (adjusted ``p < alpha``) and of the interval (``1 - alpha``).
    seed : int
        Seeds every random choice (``SeedSequence(seed)`` children).
    first_stage : int
        0 (default): every comparison uses all relabellings. Otherwise a comparison first uses this many
        and stops there when they already put its p-value at ``alpha`` or above (``compare``).

    Returns
    -------
    Design

    Raises
    ------
    InvalidInputError
        For ``correct`` not a 1-D boolean (or 0 / 1) array, a non-positive count or size, ``alpha`` outside
        ``(0, 1)``, a negative seed, or a design
        beyond ``2**26`` indices (``MemoryLimitError``; use fewer permutations, repeats or a smaller cap).

    Examples
    --------
    >>> d = design(np.arange(100) % 4 != 0, repeats=3, permutations=50, bootstrap=20, seed=1)
    >>> d.size, d.observed.shape, d.permuted.shape
    (25, (3, 2, 25), (50, 3, 2, 25))
    """
    repeats = _positive(repeats, "repeats")
    from_family = permutations is None
    permutations = DEFAULT_PERMUTATIONS if from_family else _positive(permutations, "permutations")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0:
        raise InvalidInputError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    bootstrap = int(bootstrap)
    group_size = _positive(group_size, "group_size", allow_none=True)
    max_group_size = _positive(max_group_size, "max_group_size", allow_none=True)
    if not 0 < float(alpha) < 1:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    mask = _correct_mask(correct)
    pool_rng, sub_rng, perm_rng, boot_rng = (np.random.default_rng(s)
                                             for s in np.random.SeedSequence(int(seed)).spawn(4))
    members = [np.flatnonzero(mask), np.flatnonzero(~mask)]
    cap = max_group_size or mask.size
    pools = [np.sort(pool_rng.permutation(m)[:cap]) if m.size > cap else m for m in members]
    size = min(p.size for p in pools)
    size = size if group_size is None else min(size, group_size)
    settings = {"repeats": repeats, "permutations": None if from_family else permutations, "bootstrap": bootstrap,
                "group_size": group_size, "max_group_size": max_group_size, "alpha": float(alpha), "seed": int(seed)}
    if 0 < first_stage < permutations:
        settings["first_stage"] = int(first_stage)
    reason = comparison_reason(mask, size, group_size=group_size)
    empty = np.zeros((0, repeats, 2, 0), dtype=np.int32)
    if reason:
        return Design(mask, np.zeros(0, np.int64), np.zeros(0, bool), 0, repeats,
                      np.zeros((repeats, 2, 0), np.int32), empty, empty, float(alpha), reason, settings)
    if (1 + permutations + bootstrap) * repeats * 2 * size > _MAX_INDICES:
        raise MemoryLimitError(f"a comparison of {permutations} relabellings and {bootstrap} bootstrap resamples "
                               f"of {repeats} pairs of {size} points exceeds {_MAX_INDICES} indices: "
                               "use fewer permutations, bootstrap resamples or repeats, or a smaller max_group_size")
    pool = np.concatenate(pools)
    order = np.argsort(pool, kind="stable")
    pool, labels = pool[order], np.concatenate([np.ones(pools[0].size, bool), np.zeros(pools[1].size, bool)])[order]
    positions = [np.flatnonzero(labels), np.flatnonzero(~labels)]
    observed = np.stack([_subsamples(sub_rng, p, repeats, size) for p in positions], axis=1)
    permuted = _relabellings(perm_rng, pool.size, pools[0].size, permutations, repeats, size)
    picks = boot_rng.integers(0, size, size=(bootstrap, repeats, 2, size))
    resampled = np.take_along_axis(np.broadcast_to(observed, (bootstrap,) + observed.shape), picks, axis=3)
    return Design(mask, pool, labels, size, repeats, observed.astype(np.int32), permuted.astype(np.int32),
                  resampled.astype(np.int32), float(alpha), "", settings)


def equal_size_subsets(correct, size: Optional[int] = None, repeats: int = DEFAULT_REPEATS, seed: int = 0,
                       max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE) -> Dict[str, List[np.ndarray]]:
    """The compared sets of ``design(correct, ...)``: ``{"correct": [idx, ...], "incorrect": [...]}``.

    ``repeats`` sorted int64 probe-index arrays per group, all of the same length ``size`` (default: the
    smaller pool); a pool of exactly that size appears whole in every repeat. Empty lists when the groups
    are not compared. The same sets as ``relusv.torch.analyze`` and ``Monitor`` with these settings.

    Parameters
    ----------
    correct : array of bool
        Per probe point: classified correctly.
    size : int, optional
        Points per compared set (``group_size``); default the smaller pool.
    repeats : int
        Subsample pairs per group.
    seed : int
        Seeds the pools and subsamples (``numpy.random.SeedSequence``).
    max_group_size : int, optional
        Each group's pool is a seeded subset of at most this many points (None: all).

    Returns
    -------
    dict of str to list of numpy.ndarray
        ``{"correct": [...], "incorrect": [...]}``, ``repeats`` index arrays each.

    Raises
    ------
    InvalidInputError
        ``correct`` not a 1-D boolean (or 0 / 1) array; ``repeats``, ``size`` or ``max_group_size`` not a
        positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> from relusv.torch import equal_size_subsets
    >>> sets = equal_size_subsets(np.array([1, 1, 1, 0, 0, 1, 0, 1], bool), repeats=2)
    >>> [s.tolist() for s in sets["incorrect"]]
    [[3, 4, 6], [3, 4, 6]]
    >>> [len(s) for s in sets["correct"]]
    [3, 3]
    """
    plan = design(correct, repeats=repeats, permutations=1, bootstrap=1, group_size=size,
                  max_group_size=max_group_size, seed=seed)
    return {g: [idx.astype(np.int64) for idx in sets] for g, sets in plan.subsets().items()}


def permutations_for(family: int, alpha: float = DEFAULT_ALPHA) -> int:
    """The number of relabellings for a Holm family of ``family`` comparisons at level ``alpha``: the one rule.

    ``B = max(DEFAULT_PERMUTATIONS, ceil(PERMUTATION_MARGIN * family / alpha) - 1)``. The smallest permutation
    p-value is ``1 / (B + 1)`` and Holm multiplies the smallest p-value by ``family``, so with fewer than
    ``family / alpha`` relabellings no verdict is possible (``resolution_note``); with ``B`` the smallest
    attainable adjusted p-value is at most ``alpha / PERMUTATION_MARGIN``.

    Parameters
    ----------
    family : int
        Comparisons adjusted together (``analyze``'s ``attrs["family"]``; a ``Monitor``'s per measurement).
    alpha : float in (0, 1)
        The family-wise level.

    Returns
    -------
    int

    Raises
    ------
    InvalidInputError
        For a negative ``family`` or ``alpha`` outside ``(0, 1)``.

    Examples
    --------
    >>> permutations_for(58), permutations_for(3)
    (2319, 500)
    """
    if isinstance(family, bool) or not isinstance(family, (int, np.integer)) or family < 0:
        raise InvalidInputError(f"family must be a non-negative integer, got {family!r}")
    if not 0 < float(alpha) < 1:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha!r}")
    return max(DEFAULT_PERMUTATIONS, int(np.ceil(PERMUTATION_MARGIN * int(family) / float(alpha))) - 1)


def for_family(plan: Design, family: int) -> Design:
    """``plan`` with its count of relabellings drawn from the family when it was left open (``permutations=None``).

    The count is ``permutations_for(family, alpha)``, lowered where the design would exceed its index limit
    (``resolution_note`` then says so); the relabellings are drawn in two stages (``design``'s ``first_stage``:
    ``DEFAULT_PERMUTATIONS`` first). The pools and compared sets are those of ``plan`` (the same seed and
    streams). A plan with a fixed count, or whose groups are not compared, is returned as it is.
    """
    if plan.settings.get("permutations", 0) is not None or not plan.comparable:
        return plan
    s = plan.settings
    limit = _MAX_INDICES // (s["repeats"] * 2 * plan.size) - 1 - s["bootstrap"]
    count = max(1, min(permutations_for(family, plan.alpha), limit))
    out = design(plan.correct, repeats=s["repeats"], permutations=count, bootstrap=s["bootstrap"],
                 group_size=s["group_size"], max_group_size=s["max_group_size"], alpha=s["alpha"], seed=s["seed"],
                 first_stage=DEFAULT_PERMUTATIONS)
    out.settings["permutations_rule"] = f"from the family: {family} comparisons"
    return out


def _relabellings(rng: np.random.Generator, pooled: int, n_correct: int, permutations: int, repeats: int,
                  size: int) -> np.ndarray:
    """``(permutations, repeats, 2, size)`` positions: each relabelling splits the pool at random into groups of
    the pools' sizes, then draws ``repeats`` subsample pairs as for the observed labels."""
    out = np.empty((permutations, repeats, 2, size), dtype=np.int32)
    block = max(1, (1 << 22) // max(1, pooled * repeats))
    for start in range(0, permutations, block):
        b = min(block, permutations - start)
        shuffled = rng.permuted(np.broadcast_to(np.arange(pooled), (b, pooled)), axis=1)
        groups = (shuffled[:, :n_correct], shuffled[:, n_correct:])
        for k, members in enumerate(groups):
            rows = np.repeat(members, repeats, axis=0)
            out[start:start + b, :, k, :] = _subsamples(rng, rows, b * repeats, size).reshape(b, repeats, size)
    return out


# -- set functionals ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Functional:
    """A set functional ``f(A) = reduce(max_A V, min_A V)`` on the rows of ``values`` (``L x S``, pool order)."""

    name: str
    values: np.ndarray
    reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def evaluate(self, sets: np.ndarray) -> np.ndarray:
        """``f`` of every set: ``sets`` of shape ``(..., n)`` (positions) gives shape ``(...)``.

        The column-wise maxima and minima of a block of sets come from the library
        (``set_extremes``, one native call per block), so no ``(sets, n, S)`` array is ever formed.
        """
        flat = sets.reshape(-1, sets.shape[-1])
        out = np.empty(flat.shape[0])
        per = max(1, _BLOCK // self.values.shape[1])
        for start in range(0, flat.shape[0], per):
            hi, lo = set_extremes(self.values, flat[start:start + per])
            out[start:start + per] = self.reduce(hi, lo)
        return out.reshape(sets.shape[:-1])


def set_extremes(values: np.ndarray, sets: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(hi, lo)``, each ``(len(sets), S)``: the column-wise maxima and minima of ``values[set]`` (``L x S``
    float64) for every row of ``sets`` (positions in ``0 .. L - 1``), by ``relusv_set_extremes`` (one thread,
    the GIL released; every position checked by the library)."""
    from .. import _native
    from .._arrays import matrix, prepare

    v = prepare(np.asarray(values, dtype=np.float64))
    idx = np.ascontiguousarray(sets, dtype=np.int64)
    count, size = idx.shape
    hi = np.empty((count, v.shape[1]))
    lo = np.empty((count, v.shape[1]))
    m = matrix(v)
    double = ctypes.POINTER(ctypes.c_double)
    _native.check(_native.lib.relusv_set_extremes(
        ctypes.byref(m), idx.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), count, size,
        hi.ctypes.data_as(double), lo.ctypes.data_as(double), _native.NO_PROGRESS, None))
    return hi, lo


def trimmed_mean(values: np.ndarray, trim: float) -> np.ndarray:
    """Row-wise mean with ``int(trim * S)`` values cut at each end (SciPy ``trim_mean``; relusv.gmw's rule)."""
    s = values.shape[-1]
    cut = int(trim * s)
    if cut == 0:
        return values.mean(axis=-1)
    return np.sort(values, axis=-1)[..., cut:s - cut].mean(axis=-1)


def projections(points: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``Z G^T`` in float64: the pooled points' products with the directions (one GEMM)."""
    return np.asarray(points, dtype=np.float64).reshape(len(points), -1) @ directions.T


def gmw_functional(points: Optional[np.ndarray], samples: int, trim: float, seed: int,
                   projected: Optional[np.ndarray] = None) -> Functional:
    """The GMW as a functional: ``f(A) = relusv.gmw(points[A], samples, seed, trim)`` (MATH.md section 4).

    ``projected`` may hold ``projections(points, gaussian_directions(n, samples, seed))`` already
    (the streaming route of ``Monitor``); then ``points`` is not needed.
    """
    if projected is None:
        x = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
        projected = projections(x, shared_directions(int(x.shape[1]), int(samples), int(seed)))
    return Functional("gmw", projected, lambda hi, lo: trimmed_mean(hi - lo, trim))


def maximum_functional(values: np.ndarray, name: str = "s0") -> Functional:
    """``f(A) = max_{i in A} v_i`` of per-point values ``v`` (the exact ``s_0``: ``v_i = ||phi(x_i) - phi_0||``)."""
    return Functional(name, np.asarray(values, dtype=np.float64).reshape(-1, 1), lambda hi, lo: hi[:, 0])


# -- one comparison ------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """One site's comparison: per-repeat values, the statistic, its p-value, effect and interval.

    ``p_adjusted`` and ``verdict`` are set by ``adjust`` over the family.
    """

    quantity: str
    correct_values: List[float]
    incorrect_values: List[float]
    difference: float
    effect: float
    effect_low: float
    effect_high: float
    p_value: float
    permutations: int
    p_adjusted: float = float("nan")
    verdict: str = ""

    @property
    def correct(self) -> float:
        return float(np.mean(self.correct_values))

    @property
    def incorrect(self) -> float:
        return float(np.mean(self.incorrect_values))

    def columns(self, prefix: str) -> Dict[str, object]:
        """The table's columns ``{prefix}_correct``, ``..._spread``, ``_difference``, ``_effect`` (and
        ``_low`` / ``_high``), ``_p_value``, ``_p_adjusted``, ``_verdict``."""
        return {f"{prefix}_correct": self.correct, f"{prefix}_correct_spread": spread(self.correct_values),
                f"{prefix}_incorrect": self.incorrect, f"{prefix}_incorrect_spread": spread(self.incorrect_values),
                f"{prefix}_difference": self.difference, f"{prefix}_effect": self.effect,
                f"{prefix}_effect_low": self.effect_low, f"{prefix}_effect_high": self.effect_high,
                f"{prefix}_p_value": self.p_value, f"{prefix}_p_adjusted": self.p_adjusted,
                f"{prefix}_verdict": self.verdict}


COMPARISON_FIELDS = ("difference", "effect", "effect_low", "effect_high", "p_value", "p_adjusted")
COLUMN_SUFFIXES = ("correct", "correct_spread", "incorrect", "incorrect_spread", "difference", "effect",
                   "effect_low", "effect_high", "p_value", "p_adjusted", "verdict")


def empty_columns(prefix: str, reason: str) -> Dict[str, object]:
    """The columns of a comparison that was not made, its verdict ``not compared: <reason>``."""
    out: Dict[str, object] = {f"{prefix}_{s}": float("nan") for s in COLUMN_SUFFIXES}
    out[f"{prefix}_verdict"] = f"not compared: {reason}"
    return out


def _statistic(values: np.ndarray) -> tuple:
    """``(D, D / mean f)`` from ``values[..., r, g]``."""
    d = (values[..., 0] - values[..., 1]).mean(axis=-1)
    scale = values.mean(axis=(-1, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return d, np.where(scale > 0, d / scale, np.nan)


def _evaluate_pairs(functional: Functional, sets: np.ndarray, whole: Sequence[bool]) -> np.ndarray:
    """``f`` of ``sets[..., r, g, :]``; a group used whole has the same set in every repeat: evaluated once."""
    out = np.empty(sets.shape[:-1])
    for k in range(2):
        if whole[k]:
            out[..., :, k] = functional.evaluate(sets[..., 0, k, :])[..., None]
        else:
            out[..., :, k] = functional.evaluate(sets[..., :, k, :])
    return out


def _interval(plan: Design, functional: Functional, effect: float, d_star: np.ndarray,
              scale: float) -> Tuple[float, float]:
    """The effect's interval at level ``1 - alpha``: the permutation spread (``plan`` without bootstrap
    resamples) or the bootstrap percentiles."""
    if plan.resampled.shape[0] == 0:
        if not scale > 0 or d_star.size < 2:
            return float("nan"), float("nan")
        half = NormalDist().inv_cdf(1 - plan.alpha / 2) * spread(d_star.ravel()) / scale
        return effect - half, effect + half
    _, boot = _statistic(functional.evaluate(plan.resampled))
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return float("nan"), float("nan")
    low, high = np.quantile(boot, [plan.alpha / 2, 1 - plan.alpha / 2])
    return float(low), float(high)


def stop_count(first: int, alpha: float) -> int:
    """Exceedances among the first ``first`` relabellings that end a staged comparison there: the least ``h``
    with ``(1 + h) / (first + 1) >= alpha``, so a comparison stopped early has ``p >= alpha`` (never a verdict)."""
    return max(0, int(np.ceil(alpha * (first + 1))) - 1)


def _permutation_statistics(plan: Design, functional: Functional, threshold: float) -> np.ndarray:
    """``D*`` on the plan's relabellings; staged (``first_stage``): on the first ones only when at least
    ``stop_count`` of them reach ``|D*| >= threshold``.

    The staged p-value is valid: for ``u`` below ``(1 + h) / (first + 1)`` it is at most ``u`` only where the
    comparison ran to the end and the full p-value is; above, ``p <= u`` implies that the p-value of the first
    stage, itself a permutation p-value, is (it is reported when the comparison stops, and below ``u`` when it
    does not)."""
    first = int(plan.settings.get("first_stage", 0))
    if not 0 < first < plan.permuted.shape[0]:
        return _statistic(_evaluate_pairs(functional, plan.permuted, plan.whole))[0]
    head, _ = _statistic(_evaluate_pairs(functional, plan.permuted[:first], plan.whole))
    if int(np.sum(np.abs(head) >= threshold)) >= stop_count(first, plan.alpha):
        return head
    tail, _ = _statistic(_evaluate_pairs(functional, plan.permuted[first:], plan.whole))
    return np.concatenate([head, tail])


def compare(plan: Design, functional: Functional) -> Comparison:
    """The statistic, permutation p-value and the effect's interval of ``functional`` on ``plan`` (unadjusted).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> correct = np.arange(200) >= 60
    >>> x = rng.normal(size=(200, 5)) * np.where(correct, 2.0, 1.0)[:, None]   # the correct points wider
    >>> plan = design(correct, repeats=3, permutations=200, bootstrap=50, seed=0)
    >>> c = compare(plan, gmw_functional(x[plan.pool], samples=50, trim=0.1, seed=0))
    >>> bool(c.difference > 0 and c.p_value < 0.01)
    True
    """
    if not plan.comparable:
        raise InvalidInputError(f"the groups are not compared: {plan.reason}")
    if functional.values.shape[0] != plan.pool.size:
        raise InvalidInputError(f"the functional has {functional.values.shape[0]} rows, the pool "
                                f"{plan.pool.size} points")
    observed = _evaluate_pairs(functional, plan.observed, plan.whole)
    d, effect = _statistic(observed)
    tie = 1e-12 * max(float(np.abs(observed).max()), np.finfo(float).tiny)
    d_star = _permutation_statistics(plan, functional, abs(d) - tie)
    p = (1 + int(np.sum(np.abs(d_star) >= abs(d) - tie))) / (d_star.size + 1)
    low, high = _interval(plan, functional, float(effect), d_star, float(observed.mean()))
    return Comparison(functional.name, observed[:, 0].tolist(), observed[:, 1].tolist(), float(d),
                      float(effect), float(low), float(high), float(p), int(d_star.size))


# -- the family ---------------------------------------------------------------------------------------

def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN entries are not members and stay NaN).

    ``p_adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the sorted members; rejecting where
    ``p_adj < alpha`` controls the family-wise error rate at ``alpha`` under any dependence.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, float("nan")]).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    members = np.flatnonzero(np.isfinite(p))
    m = members.size
    if m == 0:
        return out
    order = members[np.argsort(p[members], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def verdict(difference: float, p_adjusted: float, alpha: float) -> str:
    """``correct larger`` / ``incorrect larger`` where ``p_adjusted < alpha``, else ``no difference shown``."""
    if np.isfinite(p_adjusted) and p_adjusted < alpha and difference != 0:
        return VERDICTS[0] if difference > 0 else VERDICTS[1]
    return VERDICTS[2]


def resolution_note(permutations: int, family: int, alpha: float) -> str:
    """Why no verdict is reachable (``""`` when one is): the smallest permutation p-value ``1 / (B + 1)``
    must lie below Holm's first threshold ``alpha / m`` for any verdict to be possible."""
    if family and 1 / (permutations + 1) >= alpha / family:
        return (f"with {permutations} permutations the smallest p-value is 1/{permutations + 1}, not below "
                f"alpha / {family} = {alpha / family:.2g} (Holm over {family} comparisons): no verdict is "
                f"possible; use at least {int(np.ceil(family / alpha))} permutations")
    return ""


def adjust(comparisons: Sequence[Comparison], alpha: float) -> None:
    """Holm-adjusts the family ``comparisons`` in place and sets each verdict."""
    adjusted = holm([c.p_value for c in comparisons])
    for c, p in zip(comparisons, adjusted):
        c.p_adjusted = float(p)
        c.verdict = verdict(c.difference, c.p_adjusted, alpha)


def describe(c: Comparison, level: float) -> str:
    """One line: the verdict, adjusted p and the effect's interval, e.g.
    ``correct larger (Holm-adjusted p = 0.003; effect +4.1 %, 95 % interval [+2.0 %, +6.3 %])``."""
    return (f"{c.verdict} (Holm-adjusted p = {c.p_adjusted:.3g}; effect {100 * c.effect:+.1f} %, "
            f"{100 * level:.0f} % interval [{100 * c.effect_low:+.1f} %, {100 * c.effect_high:+.1f} %])")
