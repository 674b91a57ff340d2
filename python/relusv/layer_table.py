"""The per-layer table of ``analyze`` from captured activations (MATH.md sections 2-6, 9), in NumPy.

``relusv.torch.analyze`` captures the activations of a torch model and
``relusv report`` those of a NumPy MLP (when torch is not installed); both
describe each layer as a ``LayerInput`` and call ``table_records`` here, so
every number of the table has one implementation:

- the spectrum of ``W`` (``K_mat`` for a convolution): numerical rank,
  ``sigma_0``, smallest ``sigma``, stable rank ``||W||_F^2 / sigma_0^2``;
- the operator norm of the layer's linear map on its input (MATH.md
  section 9, ``operator_norm``): ``sigma_0`` for a linear layer; for a
  convolution exact where cheap, else a certified bracket
  ``operator_norm_lower <= ||A|| <= operator_norm`` (``relusv.torch.conv_operator_norm``);
  ``operator_norm_method`` says which, with the bracket's relative gap;
- the GMW and effective dimension ``(w / diam)^2`` of both groups at the
  layer's input and at its activation's output, on ``repeats`` equal-size
  subsample pairs (directions seeded ``seed + r`` in repeat ``r``), with the
  confidence of the comparison (``relusv.groups``);
- for a ReLU layer, the exact ``s_0`` on every repeat's sets and certified
  bounds of ``s_k`` over each group's inputs (first subsample) at ranks below
  ``rank(X W^T)``, above which ``s_k = 0`` exactly (MATH.md section 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _progress
from .groups import (
    GROUPS,
    MIN_GROUP_SIZE,
    comparison_reason,
    comparison_verdict,
    equal_size_subsets,
    spread,
    wider_fraction,
)

SITES = ("input", "output")
DEFAULT_REPEATS = 5
DEFAULT_MAX_GROUP_SIZE = 500
DEFAULT_RELU_POINTS = 9     # ranks per bound curve (evenly spaced below the data rank); None: every rank
DEFAULT_RELU_MAX_STEPS = 50  # Adam steps per fitted rank: a survey's budget (relu_options={"max_steps": ...} for more)


def progress_bar(iterable: Iterable, description: str, total: Optional[int] = None, show: Optional[bool] = None):
    """``iterable`` reporting progress under relusv's one policy (``relusv._progress.progress_bar``)."""
    return _progress.progress_bar(iterable, description, total, show)


def numerical_rank(sigma: np.ndarray, shape: Sequence[int], dtype: Any) -> int:
    """``#{k : sigma_k > sigma_0 max(m, n) eps}`` with ``eps`` of ``dtype`` (NumPy's ``matrix_rank`` rule)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.size == 0 or sigma[0] == 0:
        return 0
    return int(np.sum(sigma > sigma[0] * max(shape) * np.finfo(dtype).eps))


@dataclass(frozen=True)
class LayerInput:
    """What the table needs of one layer.

    ``matrix`` is ``W`` (``K_mat`` for a convolution) and ``bias`` its bias,
    BatchNorm folded, float64; ``dtype`` the stored weight's precision (for
    the rank tolerance); ``weight_shape`` the stored weight's shape;
    ``conv_bounds(images, ks, seed, options)`` the channel-rank bound curve of
    a convolution (a ``ReluSpectrum``-like object with ``to_dict()``), None
    where it cannot be computed; ``input_shape`` the per-point input shape;
    ``conv_geometry`` a convolution's ``stride``, ``padding``, ``dilation``
    and ``padding_mode`` (None where its operator norm is not computed).
    ``matrix`` is None for a named module that is not a weight layer.
    """

    name: str
    kind: str
    module: str
    activation: Optional[str]
    relu: bool
    leaky_slope: float
    folded: str
    notes: Tuple[str, ...]
    weight_shape: Optional[Tuple[int, ...]]
    matrix: Optional[np.ndarray]
    bias: Optional[np.ndarray]
    parameters: int
    dtype: Any = np.float64
    conv_bounds: Optional[Callable] = None
    input_shape: Optional[Tuple[int, ...]] = None
    conv_geometry: Optional[Dict[str, Any]] = None

    @property
    def weighted(self) -> bool:
        return self.matrix is not None


@dataclass
class Groups:
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

    def chosen(self) -> np.ndarray:
        """Every probe index in some subset, sorted: the rows whose activations the table needs."""
        parts = [idx for g in GROUPS for idx in self.subsets[g]]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def compare_groups(correct: np.ndarray, group_size: Optional[int], max_group_size: Optional[int], repeats: int,
                   seed: int) -> Groups:
    """The classification ``correct`` split into ``repeats`` equal-size seeded subsample pairs (or the reason
    there are none): ``size`` is the smaller group, at most ``group_size`` and ``max_group_size``."""
    smallest = int(min(correct.sum(), (~correct).sum()))
    size = smallest if group_size is None else min(int(group_size), smallest)
    if max_group_size is not None:
        size = min(size, int(max_group_size))
    reason = comparison_reason(correct, size, MIN_GROUP_SIZE)
    subsets = equal_size_subsets(correct, size, repeats, seed) if not reason else {g: [] for g in GROUPS}
    return Groups(correct, subsets, size if not reason else 0, repeats, reason)


def _widths(points: np.ndarray, groups: Groups, position: Dict[int, int], samples: int, trim: float,
            seed: int) -> Dict[str, Dict[str, List[float]]]:
    """Per group: the GMW and effective dimension of each repeat's subset of ``points`` (rows in ``chosen`` order)."""
    from . import diameter, gmw

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


def relu_curve(layer: LayerInput, w: np.ndarray, b: Optional[np.ndarray], x: Optional[np.ndarray], points: Optional[int],
               seed: int, options: dict) -> dict:
    """Certified ReLU bounds of a linear layer over ``x`` (float64), at ranks below ``rank(X W^T)``;
    ``x=None``: over a seeded sample of the unit sphere with ``b = 0`` (MATH.md section 1)."""
    from . import relu_singular_values

    limit = min(w.shape)
    zero_from = limit if x is None else min(limit, data_rank(w, x))
    ks = curve_ks(max(zero_from, 1), points)
    spectrum = relu_singular_values(w, b, x, ks, leaky_slope=layer.leaky_slope, seed=seed,
                                    **{"progress": False, **options})
    return _curve_dict(spectrum, zero_from, limit)


def _conv_curve(layer: LayerInput, images: np.ndarray, points: Optional[int], seed: int, options: dict):
    """Channel-rank bounds of a convolution through ``layer.conv_bounds`` (``relusv.torch.relu_singular_values``)."""
    limit = min(layer.matrix.shape)
    ks = curve_ks(limit, points)
    spectrum = layer.conv_bounds(images, ks, seed, {"progress": False, **options})
    return _curve_dict(spectrum, limit, limit)


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


def operator_norm(layer: LayerInput, sigma_0: float, seed: int,
                  start: Optional[np.ndarray] = None) -> Tuple[Dict[str, Any], Optional[np.ndarray]]:
    """The table's operator-norm columns of the layer's linear map on its input, BatchNorm folded (MATH.md section 9).

    Returns ``(columns, vector)``: ``columns`` are ``operator_norm``, a
    certified upper bound of ``||A||``, ``operator_norm_lower``, a certified
    lower bound (attained by a unit input), and ``operator_norm_method``
    naming how they were obtained, with the relative gap
    ``(upper - lower) / upper`` for a bracket. A linear layer's norm is
    ``sigma_0`` ("exact"). A convolution's operator acts on ``C_in x H x W``
    inputs (``layer.input_shape``); ``relusv.torch.conv_operator_norm`` gives
    it exactly (circular padding keeping ``H x W``; 1x1 kernels with zero
    padding, ``max_g sigma_0`` of the groups' kernel matrices) or as a
    certified bracket (small zero-padded layers: dense matrix with a Cholesky
    certificate; others: Lanczos from below, the circular convolution on the
    padded torus from above, at most ``conv_operator.DEFAULT_MAX_ITER``
    operator applications or a gap of ``conv_operator.DEFAULT_TOL``), never a
    bare estimate from below. Grouped convolutions included. ``vector`` is
    the unit input attaining the lower end of a Lanczos bracket (None
    otherwise): passed back as ``start`` for the same layer, it warm-starts
    the iteration (``relusv.torch.Monitor`` does so between measurements).
    """
    nan = float("nan")
    if layer.kind == "linear":
        return {"operator_norm": sigma_0, "operator_norm_lower": sigma_0, "operator_norm_method": "exact"}, None
    geometry, shape = layer.conv_geometry, layer.input_shape
    if geometry is None:
        reason = "not computed: string-padded convolution"
    elif shape is None or len(shape) != 3:
        reason = "not computed: the input size is unknown"
    else:
        reason = ""
    if reason:
        return {"operator_norm": nan, "operator_norm_lower": nan, "operator_norm_method": reason}, None
    from .torch import conv_operator_norm

    if start is not None and np.size(start) != int(np.prod(shape)):
        start = None   # the input size changed: a cold start
    kernel = layer.matrix.reshape(layer.weight_shape)
    result = conv_operator_norm(kernel, tuple(int(s) for s in shape[1:]), seed=seed, start=start, **geometry)
    method = result.method if result.exact else f"{result.method}, gap {result.gap:.1e}"
    return {"operator_norm": result.upper if not result.exact else result.estimate,
            "operator_norm_lower": result.lower if not result.exact else result.estimate,
            "operator_norm_method": method}, result.vector


def _layer_row(layer: LayerInput, acts: Dict[tuple, np.ndarray], groups: Groups, position: Dict[int, int],
               settings: dict, details: dict) -> Dict[str, Any]:
    from . import singular_values

    row: Dict[str, Any] = {"layer": layer.name, "kind": layer.kind, "module": layer.module,
                           "activation": layer.activation or "none", "relu": layer.relu, "folded": layer.folded,
                           "notes": "; ".join(layer.notes)}
    detail: Dict[str, Any] = {"relu_bounds": {}}
    if layer.weighted:
        w = layer.matrix
        sigma = np.asarray(singular_values(w), dtype=np.float64)
        row.update({"weight_shape": tuple(int(s) for s in layer.weight_shape), "matrix_shape": tuple(w.shape),
                    "parameters": layer.parameters,
                    "rank": numerical_rank(sigma, w.shape, layer.dtype),
                    "sigma_0": float(sigma[0]), "sigma_min": float(sigma[-1]),
                    "stable_rank": float(np.sum(sigma ** 2) / sigma[0] ** 2) if sigma[0] > 0 else 0.0})
        row.update(operator_norm(layer, float(sigma[0]), settings["seed"])[0])
        detail["singular_values"] = sigma.tolist()
    else:
        row.update({"weight_shape": None, "matrix_shape": None, "parameters": layer.parameters,
                    "rank": None, "sigma_0": float("nan"), "sigma_min": float("nan"), "stable_rank": float("nan"),
                    "operator_norm": float("nan"), "operator_norm_lower": float("nan"),
                    "operator_norm_method": "not a weight layer"})
        detail["singular_values"] = None
    for site in SITES:
        key = (layer.name, site)
        prefix = "" if site == "output" else "input_"
        row[f"{prefix}dimension"] = settings["dimensions"].get(key)
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


def _relu_columns(layer: LayerInput, acts: Dict[tuple, np.ndarray], groups: Groups, position: Dict[int, int],
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
    w, b = layer.matrix, layer.bias
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
        elif layer.conv_bounds is None:
            status = "not computed: convolution bounds need relusv.torch.relu_singular_values"
            break
        else:
            images = x.reshape(x.shape[0], *layer.input_shape).astype(np.float64)
            curve = _conv_curve(layer, images, settings["relu_points"], settings["seed"], settings["relu_options"])
        detail["relu_bounds"][g] = curve
        summary = _curve_summary(curve)
        out.update({f"relu_k10_{g}": summary["k10"], f"relu_bound_ratio_{g}": summary["ratio"]})
    out["relu_bounds"] = status
    return out


def _exact_top(layer: LayerInput, outputs: np.ndarray, b: Optional[np.ndarray], groups: Groups,
               position: Dict[int, int], detail: dict) -> Dict[str, Any]:
    """``s_0(phi; X) = max_x ||phi(x) - phi_0||`` exactly (MATH.md sections 2 and 9), ``phi_0`` the activation
    of the bias alone (broadcast over positions for a convolution), on every repeat's subset of each group."""
    channels = layer.matrix.shape[0]
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


def table_settings(seed: int = 0, samples: int = 100, trim: float = 0.1, relu_bounds: bool = True,
                   relu_points: Optional[int] = DEFAULT_RELU_POINTS, relu_options: Optional[dict] = None,
                   unit_sphere: bool = False, sphere_points: int = 2000,
                   sphere_max_steps: Optional[int] = None) -> Dict[str, Any]:
    """The settings ``table_records`` reads, with the default step budget filled in."""
    return {"seed": int(seed), "samples": samples, "trim": trim, "relu_bounds": relu_bounds,
            "relu_points": relu_points, "relu_options": {"max_steps": DEFAULT_RELU_MAX_STEPS, **(relu_options or {})},
            "unit_sphere": unit_sphere, "sphere_points": sphere_points, "sphere_max_steps": sphere_max_steps}


def table_records(layers: Sequence[LayerInput], groups: Groups, acts: Dict[tuple, np.ndarray],
                  settings: dict, show: Optional[bool] = None,
                  dimensions: Optional[Dict[tuple, int]] = None) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """``(rows, attrs)`` of the table: one row per layer, and the probe summary with per-layer ``details``.

    ``acts[(name, site)]`` holds the activations (flattened rows) of the points ``groups.chosen()`` in that
    order, at ``site`` ``"input"`` (weight layers) and ``"output"`` (after the activation). ``settings``:
    ``seed``, ``samples``, ``trim``, ``relu_bounds``, ``relu_points``, ``relu_options``, ``unit_sphere``,
    ``sphere_points``, ``sphere_max_steps``. ``dimensions[(name, site)]``: the size of a point there
    (default: the width of ``acts``; given when no points were chosen).
    """
    dimensions = {**{key: int(a.shape[1]) for key, a in acts.items()}, **(dimensions or {})}
    settings = {**settings, "dimensions": dimensions}
    position = {int(i): p for p, i in enumerate(groups.chosen())}
    details: Dict[str, Any] = {}
    rows = [_layer_row(layer, acts, groups, position, settings, details)
            for layer in progress_bar(layers, "layers", show=show)]
    n = int(groups.correct.size)
    attrs = {
        "points": n, "accuracy": float(groups.correct.mean()), "correct": int(groups.correct.sum()),
        "incorrect": int(n - groups.correct.sum()), "group_size": groups.size, "repeats": groups.repeats,
        "comparison": groups.reason, "settings": {k: v for k, v in settings.items() if k != "dimensions"},
        "subsets": {g: [idx.tolist() for idx in groups.subsets[g]] for g in GROUPS},
        "correct_mask": groups.correct.tolist(), "details": details,
    }
    return rows, attrs
