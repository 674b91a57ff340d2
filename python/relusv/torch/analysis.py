"""``analyze``: one call from a model and labelled data to a per-layer table (MATH.md sections 2-6, 9).

For every layer ``discover`` finds (qualified module names, BatchNorm folded),
over a probe set split into correctly and incorrectly classified points:

- the spectrum of ``W`` (``K_mat = K.reshape(C_out, -1)`` for a convolution,
  MATH.md section 9): numerical rank, ``sigma_0``, smallest ``sigma``, stable
  rank ``||W||_F^2 / sigma_0^2``;
- the Gaussian mean width and effective dimension ``(w / diam)^2`` of both
  groups, at the layer's input and at its activation's output, on sets of
  equal size (MATH.md section 6): ``repeats`` seeded subsample pairs
  (``equal_size_subsets``), repeat ``r`` with directions seeded ``seed + r``
  for both groups; mean, spread (sample standard deviation) and the fraction
  of the ``repeats x repeats`` (correct, incorrect) pairs in which the correct
  set is wider (the confidence of the comparison);
- for a ReLU layer, certified bounds of ``s_k(ReLU(W . + b); X)`` over each
  group's inputs (first subsample), at ranks ``k`` below ``rank(X W^T)``:
  from there on ``s_k = 0`` exactly (MATH.md section 2), so those ranks are
  stated, not computed; ``s_0`` is exact.

Two passes over the probe data, under ``torch.no_grad()`` in eval mode (the
modes, gradients, parameters and CPU random generator are restored): the
first classifies, the second keeps the activations of the chosen points only.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..width import DEFAULT_SAMPLES, DEFAULT_TRIM
from ._layers import TrainingModes, forward, model_device, predicted_labels, unwrap
from .discovery import Discovery, Layer, discover
from .probe import class_targets, probe_data
from .subsets import GROUPS, MIN_GROUP_SIZE, comparison_reason, equal_size_subsets

SITES = ("input", "output")
DEFAULT_REPEATS = 5
DEFAULT_MAX_GROUP_SIZE = 500
DEFAULT_RELU_POINTS = 9     # ranks per bound curve (evenly spaced below the data rank); None: every rank
DEFAULT_RELU_MAX_STEPS = 50  # Adam steps per fitted rank: a survey's budget (relu_options={"max_steps": ...} for more)
SEPARATION_CONFIDENCE = 0.9  # fraction of subsample pairs needed, with a gap beyond the spreads, for a verdict


def progress_bar(iterable: Iterable, description: str, total: Optional[int] = None, show: Optional[bool] = None):
    """``iterable`` with a ``tqdm.auto`` bar: a widget in Jupyter, a bar on a terminal.

    ``show=None`` shows it on a terminal or in a notebook kernel; ``False`` is silent.
    """
    if show is None:
        show = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not show:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, total=total, leave=False)


def numerical_rank(sigma: np.ndarray, shape: Sequence[int], dtype: Any) -> int:
    """``#{k : sigma_k > sigma_0 max(m, n) eps}`` with ``eps`` of ``dtype`` (NumPy's ``matrix_rank`` rule)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.size == 0 or sigma[0] == 0:
        return 0
    return int(np.sum(sigma > sigma[0] * max(shape) * np.finfo(dtype).eps))


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


@dataclass
class _Groups:
    """The classification and the compared subsets."""

    correct: np.ndarray                 # (N,) bool
    subsets: Dict[str, List[np.ndarray]]
    size: int
    repeats: int
    reason: str                         # why the groups are not compared ("" when they are)

    @property
    def comparable(self) -> bool:
        return not self.reason

    def pair(self, r: int) -> Dict[str, np.ndarray]:
        """Repeat ``r``'s indices per group (a group used whole appears in every repeat)."""
        return {g: self.subsets[g][r % len(self.subsets[g])] for g in GROUPS}


def _groups(correct: np.ndarray, group_size: Optional[int], max_group_size: Optional[int], repeats: int,
            seed: int) -> _Groups:
    smallest = int(min(correct.sum(), (~correct).sum()))
    size = smallest if group_size is None else min(int(group_size), smallest)
    if max_group_size is not None:
        size = min(size, int(max_group_size))
    reason = comparison_reason(correct, size, MIN_GROUP_SIZE)
    subsets = equal_size_subsets(correct, size, repeats, seed) if not reason else {g: [] for g in GROUPS}
    return _Groups(correct, subsets, size if not reason else 0, repeats, reason)


class _Capture:
    """Forward hooks keeping the chosen rows of every layer's input and activation output (flattened)."""

    def __init__(self, layers: List[Layer]):
        self.layers = layers
        self.rows: Optional[np.ndarray] = None       # positions in the batch to keep
        self.store: Dict[tuple, List[np.ndarray]] = {}
        self.input_shapes: Dict[str, tuple] = {}   # per-point input shape (to rebuild a convolution's images)

    def hooks(self) -> List[Any]:
        handles = []
        for layer in self.layers:
            def hook(_module, inputs, output, layer=layer):
                if self.rows is None or self.rows.size == 0:
                    return
                keep = torch.as_tensor(self.rows, device=output.device)
                if layer.weighted:
                    self.input_shapes[layer.name] = tuple(inputs[0].shape[1:])
                    self._keep((layer.name, "input"), inputs[0].index_select(0, keep))
                self._keep((layer.name, "output"), layer.activate(output.index_select(0, keep)))
            handles.append(layer.module.register_forward_hook(hook))
        return handles

    def _keep(self, key: tuple, tensor: torch.Tensor) -> None:
        self.store.setdefault(key, []).append(tensor.detach().reshape(tensor.shape[0], -1).cpu().numpy().copy())

    def arrays(self) -> Dict[tuple, np.ndarray]:
        return {key: np.concatenate(parts) for key, parts in self.store.items()}


def _passes(model: nn.Module, data, layers: List[Layer], predict: Callable, group_settings: dict,
            show: Optional[bool]):
    """Pass 1 (classify) and pass 2 (capture the chosen rows).

    Returns ``(groups, chosen, activations, input_shapes)``: ``activations[(name, site)]`` has one row per
    entry of ``chosen`` (sorted probe indices)."""
    device = model_device(model)
    verdicts: List[np.ndarray] = []
    for a, b, inputs, targets in progress_bar(data.iterate(), "classifying", show=show):
        labels = torch.as_tensor(predict(forward(model, inputs, device))).reshape(-1).cpu()
        if labels.shape[0] != b - a:
            raise ValueError(f"predict returned {labels.shape[0]} labels for a batch of {b - a} points")
        verdicts.append((labels == class_targets(targets).to(labels.dtype)).numpy())
    correct = np.concatenate(verdicts)
    groups = _groups(correct, **group_settings)
    chosen = np.unique(np.concatenate([idx for g in GROUPS for idx in groups.subsets[g]] or [np.zeros(0, np.int64)]))
    capture = _Capture(layers)
    if chosen.size:
        handles = capture.hooks()
        try:
            for a, b, inputs, _ in progress_bar(data.iterate(), "activations", show=show):
                capture.rows = np.flatnonzero((chosen >= a) & (chosen < b))
                capture.rows = chosen[capture.rows] - a
                if capture.rows.size:
                    forward(model, inputs, device)
        finally:
            for h in handles:
                h.remove()
    return groups, chosen, capture.arrays(), capture.input_shapes


def _widths(points: np.ndarray, groups: _Groups, position: Dict[int, int], samples: int, trim: float,
            seed: int) -> Dict[str, Dict[str, List[float]]]:
    """Per group: the GMW and effective dimension of each repeat's subset of ``points`` (rows in ``chosen`` order)."""
    from .. import diameter, gmw

    out = {g: {"gmw": [], "effective_dimension": []} for g in GROUPS}
    for r in range(groups.repeats):
        for g, idx in groups.pair(r).items():
            x = points[[position[i] for i in idx]]
            w = gmw(x, samples=samples, seed=seed + r, trim=trim, progress=False)
            d = diameter(x, progress=False)
            out[g]["gmw"].append(float(w))
            out[g]["effective_dimension"].append(float((w / d) ** 2) if d > 0 else 0.0)
    return out


def _summary_columns(prefix: str, values: Dict[str, Dict[str, List[float]]]) -> Dict[str, Any]:
    row: Dict[str, Any] = {}
    for quantity, short in (("gmw", "gmw"), ("effective_dimension", "effdim")):
        for g in GROUPS:
            v = values[g][quantity]
            row[f"{prefix}{short}_{g}"] = float(np.mean(v))
            row[f"{prefix}{short}_{g}_spread"] = spread(v)
    c, i = values["correct"]["gmw"], values["incorrect"]["gmw"]
    row[f"{prefix}gmw_ratio"] = float(np.mean(c) / np.mean(i)) if np.mean(i) > 0 else float("nan")
    row[f"{prefix}gmw_confidence"] = wider_fraction(c, i)
    row[f"{prefix}gmw_verdict"] = comparison_verdict(np.mean(c), spread(c), np.mean(i), spread(i),
                                                     row[f"{prefix}gmw_confidence"])
    return row


def _empty_summary(prefix: str, reason: str) -> Dict[str, Any]:
    row: Dict[str, Any] = {}
    for short in ("gmw", "effdim"):
        for g in GROUPS:
            row[f"{prefix}{short}_{g}"] = float("nan")
            row[f"{prefix}{short}_{g}_spread"] = float("nan")
    row.update({f"{prefix}gmw_ratio": float("nan"), f"{prefix}gmw_confidence": float("nan"),
                f"{prefix}gmw_verdict": f"not compared: {reason}"})
    return row


def curve_ks(limit: int, points: Optional[int]) -> np.ndarray:
    """Ranks ``0 .. limit - 1``, or ``points`` of them evenly spaced (0 and ``limit - 1`` included)."""
    if limit <= 0:
        return np.zeros(0, dtype=np.int64)
    if points is None or points >= limit:
        return np.arange(limit, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, limit - 1, points)).astype(np.int64))


def data_rank(w: np.ndarray, x: np.ndarray) -> int:
    """``rank(X W^T)`` (NumPy's rule): ``s_k(phi; X) = 0`` for every ``k`` at or above it (MATH.md section 2)."""
    return int(np.linalg.matrix_rank(x @ w.T)) if x.size and w.size else 0


def _curve_dict(spectrum, zero_from: int, limit: int) -> dict:
    r = spectrum.to_dict()
    out = {key: r[key] for key in ("ks", "sigma", "truncation_bound", "bound", "source")}
    out["radius"], out["points"] = r["data_max_norm"], r["points"]
    out["zero_from"] = int(zero_from)     # s_k = 0 exactly for zero_from <= k < limit
    out["rank_limit"] = int(limit)        # min(m, n): no k at or above it
    return out


def relu_curve(layer: Layer, w: np.ndarray, b: Optional[np.ndarray], x: Optional[np.ndarray], points: Optional[int],
               seed: int, options: dict) -> dict:
    """Certified ReLU bounds of a linear layer over ``x`` (float64), at ranks below ``rank(X W^T)``;
    ``x=None``: over a seeded sample of the unit sphere with ``b = 0`` (MATH.md section 1)."""
    from .. import relu_singular_values

    limit = min(w.shape)
    zero_from = limit if x is None else min(limit, data_rank(w, x))
    ks = curve_ks(max(zero_from, 1), points)
    spectrum = relu_singular_values(w, b, x, ks, leaky_slope=layer.leaky_slope, seed=seed,
                                    **{"progress": False, **options})
    return _curve_dict(spectrum, zero_from, limit)


def _conv_curve(layer: Layer, images: np.ndarray, points: Optional[int], seed: int, options: dict):
    """Channel-rank bounds of a convolution, through ``relusv.torch.relu_singular_values`` where it exists."""
    from .. import torch as relusv_torch

    fn = getattr(relusv_torch, "relu_singular_values", None)
    if fn is None:
        return None, "not computed: convolution bounds need relusv.torch.relu_singular_values"
    limit = min(layer.matrix().shape)
    ks = curve_ks(limit, points)
    spectrum = fn(layer.folded_module(), torch.from_numpy(images), ks=ks, seed=seed, **{"progress": False, **options})
    return _curve_dict(spectrum, limit, limit), "computed"


def _curve_summary(curve: dict) -> Dict[str, float]:
    """``s0`` (exact), the smallest computed ``k`` with bound at most a tenth of ``s0`` (``zero_from`` if none,
    where ``s_k = 0`` exactly) and the median of ``bound_k / (sigma_k radius)`` over computed ``k >= 1``."""
    ks, bound, sigma = np.asarray(curve["ks"]), np.asarray(curve["bound"]), np.asarray(curve["sigma"])
    s0 = float(bound[0]) if ks.size and ks[0] == 0 else float("nan")
    small = ks[bound <= 0.1 * s0] if np.isfinite(s0) else np.zeros(0)
    k10 = int(small[0]) if small.size else int(curve["zero_from"])
    keep = (ks >= 1) & (sigma > 0)
    ratio = bound[keep] / (sigma[keep] * curve["radius"]) if curve["radius"] > 0 and keep.any() else np.zeros(0)
    return {"s0": s0, "k10": k10, "ratio": float(np.median(ratio)) if ratio.size else float("nan")}


def _layer_row(layer: Layer, acts: Dict[tuple, np.ndarray], groups: _Groups, position: Dict[int, int],
               settings: dict, details: dict) -> Dict[str, Any]:
    from .. import singular_values

    module = layer.module
    row: Dict[str, Any] = {"layer": layer.name, "kind": layer.kind, "module": type(module).__name__,
                           "activation": layer.activation or "none", "relu": layer.relu, "folded": layer.folded,
                           "notes": "; ".join(layer.notes)}
    detail: Dict[str, Any] = {"relu_bounds": {}}
    if layer.weighted:
        weight = layer.weight()
        w = layer.matrix().double().cpu().numpy()
        sigma = np.asarray(singular_values(w), dtype=np.float64)
        row.update({"weight_shape": tuple(int(s) for s in weight.shape), "matrix_shape": tuple(w.shape),
                    "parameters": int(sum(p.numel() for p in module.parameters())),
                    "rank": numerical_rank(sigma, w.shape, _numpy_dtype(weight)),
                    "sigma_0": float(sigma[0]), "sigma_min": float(sigma[-1]),
                    "stable_rank": float(np.sum(sigma ** 2) / sigma[0] ** 2) if sigma[0] > 0 else 0.0})
        detail["singular_values"] = sigma.tolist()
    else:
        row.update({"weight_shape": None, "matrix_shape": None,
                    "parameters": int(sum(p.numel() for p in module.parameters())),
                    "rank": None, "sigma_0": float("nan"), "sigma_min": float("nan"), "stable_rank": float("nan")})
        detail["singular_values"] = None
    for site in SITES:
        key = (layer.name, site)
        prefix = "" if site == "output" else "input_"
        row[f"{prefix}dimension"] = int(acts[key].shape[1]) if key in acts else None
        if not groups.comparable or key not in acts:
            row.update(_empty_summary(prefix, groups.reason or "not measured"))
            detail[site] = None
            continue
        values = _widths(acts[key], groups, position, settings["samples"], settings["trim"], settings["seed"])
        row.update(_summary_columns(prefix, values))
        detail[site] = values
    row.update(_relu_columns(layer, acts, groups, position, settings, detail))
    details[layer.name] = detail
    return row


def _relu_columns(layer: Layer, acts: Dict[tuple, np.ndarray], groups: _Groups, position: Dict[int, int],
                  settings: dict, detail: dict) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for g in GROUPS:
        out.update({f"s0_{g}": float("nan"), f"s0_{g}_spread": float("nan"), f"relu_k10_{g}": None,
                    f"relu_bound_ratio_{g}": float("nan")})
    out.update({"s0_confidence": float("nan"), "s0_verdict": "", "s0_unit_sphere": float("nan")})
    if not layer.weighted:
        out["relu_bounds"] = "not a weight layer"
        return out
    if not layer.relu:
        out["relu_bounds"] = f"not a ReLU layer (activation: {layer.activation or 'none'})"
        return out
    if not settings["relu_bounds"]:
        out["relu_bounds"] = "not requested (relu_bounds=False)"
        return out
    status = "computed"
    w = layer.matrix().double().cpu().numpy()
    bias = layer.bias()
    b = None if bias is None else bias.double().cpu().numpy()
    if settings["unit_sphere"] and layer.kind == "linear":
        options = {**settings["relu_options"], "sphere_points": settings["sphere_points"]}
        if settings["sphere_max_steps"] is not None:
            options["max_steps"] = settings["sphere_max_steps"]
        curve = relu_curve(layer, w, None, None, settings["relu_points"], settings["seed"], options)
        detail["relu_bounds"]["unit_sphere"] = curve
        out["s0_unit_sphere"] = _curve_summary(curve)["s0"]
    if not groups.comparable:
        out["relu_bounds"] = f"not computed over the data: {groups.reason}"
        out["s0_verdict"] = f"not compared: {groups.reason}"
        return out
    out.update(_exact_top(layer, acts[(layer.name, "output")], b, groups, position, detail))
    for g, idx in groups.pair(0).items():
        x = acts[(layer.name, "input")][[position[i] for i in idx]]
        if layer.kind == "linear":
            curve = relu_curve(layer, w, b, x.astype(np.float64), settings["relu_points"], settings["seed"],
                               settings["relu_options"])
        else:
            images = x.reshape(x.shape[0], *settings["input_shapes"][layer.name]).astype(np.float64)
            curve, status = _conv_curve(layer, images, settings["relu_points"], settings["seed"],
                                        settings["relu_options"])
            if curve is None:
                break
        detail["relu_bounds"][g] = curve
        summary = _curve_summary(curve)
        out.update({f"relu_k10_{g}": summary["k10"], f"relu_bound_ratio_{g}": summary["ratio"]})
    out["relu_bounds"] = status
    return out


def _exact_top(layer: Layer, outputs: np.ndarray, b: Optional[np.ndarray], groups: _Groups,
               position: Dict[int, int], detail: dict) -> Dict[str, Any]:
    """``s_0(phi; X) = max_x ||phi(x) - phi_0||`` exactly (MATH.md sections 2 and 9), ``phi_0`` the activation
    of the bias alone (broadcast over positions for a convolution), on every repeat's subset of each group."""
    channels = layer.matrix().shape[0]
    bias = np.zeros(channels) if b is None else b
    at_zero = np.where(bias > 0, bias, layer.leaky_slope * bias)
    at_zero = np.repeat(at_zero, outputs.shape[1] // channels)
    values: Dict[str, List[float]] = {g: [] for g in GROUPS}
    for r in range(groups.repeats):
        for g, idx in groups.pair(r).items():
            rows = outputs[[position[i] for i in idx]].astype(np.float64)
            values[g].append(float(np.linalg.norm(rows - at_zero, axis=1).max()))
    detail["s0"] = values
    c, i = values["correct"], values["incorrect"]
    confidence = wider_fraction(c, i)
    return {"s0_correct": float(np.mean(c)), "s0_correct_spread": spread(c), "s0_incorrect": float(np.mean(i)),
            "s0_incorrect_spread": spread(i), "s0_confidence": confidence,
            "s0_verdict": comparison_verdict(np.mean(c), spread(c), np.mean(i), spread(i), confidence)}


def _numpy_dtype(t: torch.Tensor):
    return {torch.float16: np.float16, torch.bfloat16: np.float32, torch.float32: np.float32}.get(t.dtype, np.float64)


def analyze(model: nn.Module, X: Any, y: Any = None, *, layers: Optional[Iterable[str]] = None, seed: int = 0,
            relu_bounds: bool = True, group_size: Optional[int] = None,
            max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE, repeats: int = DEFAULT_REPEATS,
            samples: int = DEFAULT_SAMPLES, trim: float = DEFAULT_TRIM,
            relu_points: Optional[int] = DEFAULT_RELU_POINTS, relu_options: Optional[Dict[str, Any]] = None,
            unit_sphere: bool = False, sphere_points: int = 2000, sphere_max_steps: Optional[int] = None,
            batch_size: int = 1024, predict: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
            progress: Optional[bool] = None):
    """One row per layer of ``model``: spectra, widths of correct vs incorrect points, ReLU bounds.

    Parameters
    ----------
    model : nn.Module
        Any module (``DataParallel`` / ``DistributedDataParallel`` are unwrapped).
        Layers: ``relusv.torch.discover`` (tracing; BatchNorm folded; layers
        before GELU / Tanh listed as not ReLU; the logits layer listed without
        activation), or exactly the modules named in ``layers``.
    X, y
        Probe inputs and class targets: tensors, NumPy arrays or memmaps; or
        ``X`` a map-style dataset of ``(input, target)`` pairs, or a
        ``DataLoader`` of such batches (not shuffled: it is read twice), with
        ``y=None``.
    seed : int
        Seeds the subsamples and the Gaussian directions (``seed + r`` in repeat ``r``).
    relu_bounds : bool
        Compute ReLU singular-value bounds over each group's inputs for every
        ReLU layer (``relusv.relu_singular_values``, float64; convolutions
        through ``relusv.torch.relu_singular_values`` where available).
    group_size, max_group_size : int, optional
        Points per compared set: default the size of the smaller group, capped at ``max_group_size``.
    repeats : int
        Subsample pairs per comparison.
    samples, trim
        The GMW estimator (as ``relusv.gmw``).
    relu_points : int or None
        Ranks per bound curve, evenly spaced over ``0 .. rank(X W^T) - 1``; None for every rank.
    relu_options : dict, optional
        Extra keyword arguments of ``relu_singular_values`` (``max_steps``, ``time_budget``, ...).
        Default ``max_steps``: ``DEFAULT_RELU_MAX_STEPS`` (50), a survey's budget; every bound is
        certified whatever the budget, more steps only tighten it.
    unit_sphere : bool
        Also bound each linear ReLU layer over a seeded sample of ``sphere_points`` points
        of the unit sphere with ``b = 0`` (column ``s0_unit_sphere``), with
        ``sphere_max_steps`` Adam steps (default: ``relu_options``' or the library's).
    batch_size : int
        Probe batch size for arrays and datasets.
    predict : callable, optional
        ``predict(output) -> labels``; default argmax of the logits.
    progress : bool, optional
        ``tqdm.auto`` bars (widget in Jupyter, bar on a terminal); None shows them there, False is silent.

    Returns
    -------
    pandas.DataFrame
        One row per layer in execution order. Columns: ``layer`` (qualified
        name), ``kind``, ``module``, ``activation``, ``relu``, ``folded``,
        ``notes``, ``weight_shape``, ``matrix_shape``, ``parameters``, ``rank``,
        ``sigma_0``, ``sigma_min``, ``stable_rank``; at the activation's output
        ``dimension``, ``gmw_correct``, ``gmw_correct_spread``,
        ``gmw_incorrect``, ``gmw_incorrect_spread``, ``gmw_ratio``,
        ``gmw_confidence`` (fraction of subsample pairs in which the correct set
        is wider), ``gmw_verdict`` (``correct larger`` / ``incorrect larger``
        only beyond the spreads, else ``within spread``, or the reason there is
        no comparison), ``effdim_*``; the same with prefix ``input_`` at the
        layer's input; ``s0_correct``, ``s0_incorrect`` (exact ``s_0``, mean over
        the repeats, with ``_spread``), ``s0_confidence``, ``s0_verdict``,
        ``relu_k10_*`` (smallest computed ``k`` with bound at most ``s_0 / 10``),
        ``relu_bound_ratio_*`` (median of ``bound_k / (sigma_k max ||x||)``),
        ``s0_unit_sphere`` and ``relu_bounds`` (``computed`` or why not).
        ``df.attrs`` holds the probe summary (``points``, ``accuracy``,
        ``correct``, ``incorrect``, ``group_size``, ``repeats``, ``comparison``
        — the reason groups are not compared, or ``""``), the settings, the
        ``subsets`` compared (probe indices per group and repeat), the
        ``discovery`` (method, skipped modules) and per-layer ``details``
        (all singular values, every subsample's width, the bound curves with
        ``zero_from``, the rank from which ``s_k = 0`` exactly).
    """
    import pandas as pd

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    model = unwrap(model)
    found: Discovery = discover(model, layers)
    if not found.layers:
        raise ValueError(f"analyze: the model has no Linear / Conv2d layers to analyse (skipped: {found.skipped})")
    data = probe_data(X, y, batch_size)
    predict = predict or predicted_labels
    modes = TrainingModes(model)
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            groups, chosen, acts, shapes = _passes(model, data, found.layers, predict,
                                                   {"group_size": group_size, "max_group_size": max_group_size,
                                                    "repeats": repeats, "seed": seed}, progress)
    finally:
        modes.restore()
    position = {int(i): p for p, i in enumerate(chosen)}
    settings = {"seed": int(seed), "samples": samples, "trim": trim, "relu_bounds": relu_bounds,
                "relu_points": relu_points, "relu_options": {"max_steps": DEFAULT_RELU_MAX_STEPS, **(relu_options or {})},
                "unit_sphere": unit_sphere,
                "sphere_points": sphere_points, "sphere_max_steps": sphere_max_steps, "input_shapes": shapes}
    details: Dict[str, Any] = {}
    rows = [_layer_row(layer, acts, groups, position, settings, details)
            for layer in progress_bar(found.layers, "layers", show=progress)]
    table = pd.DataFrame(rows)
    n = int(groups.correct.size)
    table.attrs.update({
        "points": n, "accuracy": float(groups.correct.mean()), "correct": int(groups.correct.sum()),
        "incorrect": int(n - groups.correct.sum()), "group_size": groups.size, "repeats": repeats,
        "comparison": groups.reason,
        "settings": {k: v for k, v in settings.items() if k != "input_shapes"},
        "subsets": {g: [idx.tolist() for idx in groups.subsets[g]] for g in GROUPS},
        "correct_mask": groups.correct.tolist(),
        "discovery": {"method": found.method, "skipped": dict(found.skipped), "trace_error": found.trace_error,
                      "layers": [layer.describe() for layer in found.layers]},
        "details": details,
    })
    return table
