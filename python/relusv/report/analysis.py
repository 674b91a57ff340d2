"""Per-layer numbers of the report (MATH.md sections 2-6).

For a network and labelled data:

- the points are split into correctly and incorrectly classified;
- equal-size sets are drawn from both groups (MATH.md section 6: the GMW grows
  with the number of points, so only equal sizes compare): ``n = min(|C|, |I|,
  max_group_size)``, ``repeats`` times, each repeat with fresh subsets and the
  direction seed ``seed + r`` shared by both groups;
- at every depth (the input, each layer's output) the GMW and the effective
  dimension ``(w / diam)^2`` of both sets, then mean and spread (sample
  standard deviation) over the repeats;
- per layer: shape, numerical rank and the linear singular values of ``W``;
  per hidden (ReLU) layer: upper bounds of the ReLU singular values
  ``s_k(ReLU(W . + b); X)`` over the layer's inputs on the first repeat's set of
  each group, next to ``sigma_k`` and the data radius ``max ||x||`` (the chain
  ``s_k(phi; X) <= t_k <= sigma_k max ||x||`` of MATH.md section 2), and over
  a seeded sample of the unit sphere with ``b = 0`` (the unit-ball ReLU
  singular values of MATH.md section 1, where Lemma 5 gives ``s_k <= sigma_k``).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

import relusv

from . import library
from .model import Network
from .settings import ReportSettings

GROUPS = ("correct", "incorrect")
CURVES = GROUPS + ("unit_sphere",)  # ReLU bound curves per hidden layer: over each group, over a sphere sample


def steps(iterable, description: str, total: Optional[int] = None, show: Optional[bool] = None):
    """A progress bar over report steps on stderr (tqdm if installed); silent off a terminal."""
    show = sys.stderr.isatty() if show is None else show
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, total=total, leave=False, file=sys.stderr)


@dataclass(frozen=True)
class GroupSplit:
    """Indices of correctly / incorrectly classified points and the equal-size subsets drawn from them."""

    correct: np.ndarray
    incorrect: np.ndarray
    size: int
    subsets: List[Dict[str, np.ndarray]]  # per repeat: group -> indices (sorted)

    @property
    def comparable(self) -> bool:
        return self.size >= 2


def split_groups(predictions: np.ndarray, labels: np.ndarray, settings: ReportSettings) -> GroupSplit:
    """Split by correctness and draw ``repeats`` pairs of equal-size subsets (seeded by ``settings.seed``)."""
    correct = np.flatnonzero(predictions == labels)
    incorrect = np.flatnonzero(predictions != labels)
    size = int(min(len(correct), len(incorrect), settings.max_group_size))
    subsets: List[Dict[str, np.ndarray]] = []
    if size >= 2:
        rng = np.random.default_rng(settings.seed)
        for _ in range(settings.repeats):
            subsets.append({
                "correct": np.sort(rng.choice(correct, size=size, replace=False)),
                "incorrect": np.sort(rng.choice(incorrect, size=size, replace=False)),
            })
    return GroupSplit(correct, incorrect, size, subsets)


def _summary(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    spread = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "spread": spread, "values": [float(t) for t in v]}


def width_comparison(points: np.ndarray, split: GroupSplit, settings: ReportSettings) -> Optional[dict]:
    """GMW and effective dimension of both groups' equal-size sets of ``points`` (rows), over the repeats.

    Returns ``{"gmw": {group: {mean, spread, values}}, "effective_dimension": {...}}``,
    or ``None`` when the groups are too small to compare.
    """
    if not split.comparable:
        return None
    widths: Dict[str, List[float]] = {g: [] for g in GROUPS}
    dims: Dict[str, List[float]] = {g: [] for g in GROUPS}
    for r, subset in enumerate(split.subsets):
        for group in GROUPS:
            x = points[subset[group]]
            w = relusv.gmw(x, samples=settings.gmw_samples, seed=settings.seed + r, trim=settings.gmw_trim,
                           progress=False)
            d = relusv.diameter(x, progress=False)
            widths[group].append(w)
            dims[group].append((w / d) ** 2 if d > 0 else 0.0)
    return {"gmw": {g: _summary(widths[g]) for g in GROUPS},
            "effective_dimension": {g: _summary(dims[g]) for g in GROUPS}}


def numerical_rank(s: np.ndarray, shape) -> int:
    """``#{k : sigma_k > sigma_0 max(m, n) eps}`` (float32 eps: weights are usually stored in float32)."""
    if s.size == 0 or s[0] == 0:
        return 0
    return int(np.sum(s > s[0] * max(shape) * np.finfo(np.float32).eps))


def spectrum_ks(rank_limit: int, points: Optional[int]) -> np.ndarray:
    """The ranks k at which ReLU bounds are computed: all of ``0 .. rank_limit - 1``, or ``points`` evenly spaced."""
    if points is None or points >= rank_limit:
        return np.arange(rank_limit)
    return np.unique(np.round(np.linspace(0, rank_limit - 1, points)).astype(np.int64))


def layer_spectra(network: Network, activations: List[np.ndarray], split: GroupSplit,
                  settings: ReportSettings, show_progress: Optional[bool] = None) -> List[dict]:
    """Per layer: shape, rank, parameters, linear singular values, ReLU bounds per group (hidden layers)."""
    out = []
    layers = list(enumerate(network.layers))
    for i, layer in steps(layers, "spectra", show=show_progress):
        s = library.singular_values(layer.weight)
        entry = {
            "index": i,
            "name": f"layer {i + 1}" + ("" if layer.relu else " (output)"),
            "shape": list(layer.shape),
            "relu": layer.relu,
            "double": layer.factors is not None,
            "rank": numerical_rank(s, layer.shape),
            "parameters": layer.parameters,
            "singular_values": [float(v) for v in s],
            "relu_bounds": {g: None for g in CURVES},
        }
        ks = spectrum_ks(min(layer.shape), settings.spectrum_points)
        if layer.relu:
            entry["relu_bounds"]["unit_sphere"] = library.relu_bounds(
                layer.weight, None, None, ks, seed=settings.seed, max_steps=settings.sphere_max_steps,
                time_budget=settings.spectrum_time_budget, progress=show_progress,
                sphere_points=settings.sphere_points)
        if layer.relu and split.comparable:
            for group in GROUPS:
                x = activations[i][split.subsets[0][group]]
                curve = library.relu_bounds(layer.weight, layer.bias, x, ks, seed=settings.seed,
                                            max_steps=settings.spectrum_max_steps,
                                            time_budget=settings.spectrum_time_budget, progress=show_progress)
                entry["relu_bounds"][group] = curve
        out.append(entry)
    return out


def depth_names(network: Network) -> List[str]:
    """Names of the sets compared at each depth: the input, then each layer's output."""
    names = ["input"]
    for i, layer in enumerate(network.layers):
        names.append(f"layer {i + 1}" + (" (ReLU)" if layer.relu else " (logits)"))
    return names


def width_by_depth(network: Network, activations: List[np.ndarray], split: GroupSplit,
                   settings: ReportSettings, show_progress: Optional[bool] = None) -> List[dict]:
    """The GMW comparison at each depth: ``[{"depth", "name", "dimension", "gmw", "effective_dimension"}]``."""
    out = []
    names = depth_names(network)
    for depth in steps(range(len(activations)), "GMW per layer", show=show_progress):
        comparison = width_comparison(activations[depth], split, settings)
        entry = {"depth": depth, "name": names[depth], "dimension": int(activations[depth].shape[1])}
        entry.update(comparison or {"gmw": None, "effective_dimension": None})
        out.append(entry)
    return out
