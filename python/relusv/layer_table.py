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
  subsample pairs on the same directions (seed ``seed``), compared by the
  calibrated procedure of MATH.md section 11 (``relusv.analysis.compare``):
  permutation p-value, effect ``D / mean(f)`` with its interval,
  Holm adjustment over every comparison of the table, verdict;
- for a ReLU layer, the exact ``s_0`` on every repeat's sets (compared the
  same way) and certified bounds of ``s_k`` over each group's inputs (first
  subsample) at ranks below ``rank(X W^T)``, above which ``s_k = 0`` exactly
  (MATH.md section 2).

The independent computations (kernel spectra, operator norms, the comparison
of every site, the bound curves) run on a pool of one thread per core
(``relusv._workers.NativeWorkers``), each native call on one thread, and are
written into their rows in a fixed order: the pool's size changes the time,
never a value.

This module is NumPy-only: it never imports ``relusv.torch`` (the torch side
hands in what needs torch, e.g. ``LayerInput.operator_norm_estimate``).
"""
from __future__ import annotations

import functools
import inspect
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _progress, _validation
from ._workers import NativeWorkers
from .analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_PERMUTATIONS,
    DEFAULT_REPEATS,
    GROUPS,
    Comparison,
    Design,
    adjust,
    compare,
    design,
    empty_columns,
    for_family,
    gmw_functional,
    maximum_functional,
    resolution_note,
    spread,
)
from .errors import InvalidInputError
from .spectra import WeightSVD, machine_epsilon, numerical_rank, rank_of_spectrum

SITES = ("input", "output")
__all__ = ["DEFAULT_ALPHA", "DEFAULT_BOOTSTRAP", "DEFAULT_MAX_GROUP_SIZE", "DEFAULT_PERMUTATIONS", "DEFAULT_REPEATS",
           "LayerInput", "compare_groups", "table_records", "table_settings", "operator_norm", "progress_bar"]
DEFAULT_RELU_POINTS = 9     # ranks per bound curve (evenly spaced below the data rank); None: every rank
DEFAULT_RELU_MAX_STEPS = 50  # Adam steps per fitted rank: a survey's budget (relu_options={"max_steps": ...} for more)
SURVEY_FIT_WORK = 1e7        # multiply-adds of one evaluation of a layer's curve up to which every rank is fitted
SURVEY_MAX_STRIDE = 8        # above: a stride growing with the work, up to 8; beyond 8x, candidates only
#                              (survey_fit_stride; relu_options={"fit_stride": 1} fits every rank)
TOP_VALUES_BLOCK = 1 << 20  # float64 entries per block of top_values' differences
LEADING_SVD_WORK = 1e10      # m n min(m, n) from which a linear layer's shared SVD keeps only the vectors its
#                              curves read (shared_vectors)


def progress_bar(iterable: Iterable, description: str, total: Optional[int] = None, show: Optional[bool] = None):
    """``iterable`` reporting progress under relusv's one policy (``relusv._progress.progress_bar``)."""
    return _progress.progress_bar(iterable, description, total, show)


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
    ``padding_mode`` and ``groups`` (None where its operator norm is not computed);
    ``operator_norm_estimate(kernel, size, seed, geometry, start)`` a
    convolution's operator norm, exact or a certified bracket
    (``relusv.torch.conv_operator_norm``'s ``OperatorNormEstimate``; None
    where torch is not at hand). ``matrix`` is None for a named module that
    is not a weight layer.
    ``phi_zero(dimension)`` is the activation of the bias alone in the
    output layout of one point (default: ``ReLU(b)`` repeated channel-major);
    ``norm(seed)`` gives ``(upper, lower, method)``, ``lower <= ||A|| <= upper``,
    where the default rule does not apply (multi-branch sites, ``JointMap.operator_norm``). With ``conv_bounds``
    set, a linear layer's curve comes from it too, and its
    ``conv_bounds.data_rank(points)`` (when present) gives the rank from
    which ``s_k = 0`` exactly.
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
    operator_norm_estimate: Optional[Callable] = None
    phi_zero: Optional[Callable[[int], np.ndarray]] = None
    norm: Optional[Callable[[int], Tuple[float, float, str]]] = None

    @property
    def weighted(self) -> bool:
        return self.matrix is not None


Groups = Design   # the classification and the compared sets of one table (``relusv.analysis.compare.Design``)


def compare_groups(correct: np.ndarray, group_size: Optional[int] = None,
                   max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE, repeats: int = DEFAULT_REPEATS,
                   seed: int = 0, permutations: Optional[int] = None, bootstrap: int = DEFAULT_BOOTSTRAP,
                   alpha: float = DEFAULT_ALPHA) -> Design:
    """The design of the table's comparisons (MATH.md section 11; ``relusv.analysis.compare.design``):
    each group capped at ``max_group_size`` points, ``repeats`` subsample pairs of the smaller pool's size (at
    most ``group_size``), ``permutations`` relabellings (None: from the size of the table's family,
    ``relusv.analysis.compare.permutations_for``, set by ``table_records``), ``bootstrap`` resamples, or the
    reason there are none."""
    return design(correct, repeats=repeats, permutations=permutations, bootstrap=bootstrap, group_size=group_size,
                  max_group_size=max_group_size, alpha=alpha, seed=seed)


def _site_comparison(points: np.ndarray, groups: Design, samples: int, trim: float,
                     seed: int) -> Tuple[Comparison, Dict[str, Dict[str, List[float]]]]:
    """The GMW comparison of one site (rows of ``points`` in pool order) and, per group, the width and
    effective dimension ``(w / diam)^2`` of each repeat's set, on the directions of seed ``seed``."""
    from . import diameter

    comparison = compare(groups, gmw_functional(points, samples, trim, seed))
    values: Dict[str, Dict[str, List[float]]] = {}
    measured: Dict[bytes, float] = {}     # a set compared in several repeats (a whole pool) is measured once

    def set_diameter(positions: np.ndarray) -> float:
        key = np.sort(positions).tobytes()
        if key not in measured:
            measured[key] = diameter(points[positions], progress=False)
        return measured[key]

    for k, g in enumerate(GROUPS):
        widths = comparison.correct_values if k == 0 else comparison.incorrect_values
        diameters = [set_diameter(groups.observed[r, k]) for r in range(groups.repeats)]
        values[g] = {"gmw": list(widths),
                     "effective_dimension": [float((w / d) ** 2) if d > 0 else 0.0 for w, d in zip(widths, diameters)]}
    return comparison, values


def _summary_columns(prefix: str, comparison: Comparison, values: Dict[str, Dict[str, List[float]]]) -> Dict[str, Any]:
    row: Dict[str, Any] = comparison.columns(f"{prefix}gmw")
    for g in GROUPS:
        v = values[g]["effective_dimension"]
        row[f"{prefix}effdim_{g}"] = float(np.mean(v))
        row[f"{prefix}effdim_{g}_spread"] = spread(v)
    row[f"{prefix}gmw_ratio"] = comparison.correct / comparison.incorrect if comparison.incorrect > 0 else float("nan")
    return row


def _empty_summary(prefix: str, reason: str) -> Dict[str, Any]:
    row: Dict[str, Any] = empty_columns(f"{prefix}gmw", reason)
    for g in GROUPS:
        row[f"{prefix}effdim_{g}"] = float("nan")
        row[f"{prefix}effdim_{g}_spread"] = float("nan")
    row[f"{prefix}gmw_ratio"] = float("nan")
    return row


def curve_ks(limit: int, points: Optional[int]) -> np.ndarray:
    """Ranks ``0 .. limit - 1``, or ``points`` of them evenly spaced (0 and ``limit - 1`` included)."""
    if limit <= 0:
        return np.zeros(0, dtype=np.int64)
    if points is None or points >= limit:
        return np.arange(limit, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, limit - 1, points)).astype(np.int64))


def data_rank(w: np.ndarray, x: np.ndarray) -> int:
    """``rank(X W^T)`` (the library's rule, ``relusv.numerical_rank``): ``s_k(phi; X) = 0`` for every ``k`` at or
    above it (MATH.md section 2)."""
    return numerical_rank(x @ w.T) if x.size and w.size else 0


def _curve_dict(spectrum, zero_from: int, limit: int) -> dict:
    r = spectrum.to_dict()
    out = {key: r[key] for key in ("ks", "sigma", "truncation_bound", "bound", "source")}
    out["radius"], out["points"] = r["data_max_norm"], r["points"]
    out["zero_from"] = int(zero_from)     # s_k = 0 exactly for zero_from <= k < limit
    out["rank_limit"] = int(limit)        # min(m, n): no k at or above it
    return out


def relu_curve(layer: LayerInput, w: np.ndarray, b: Optional[np.ndarray], x: Optional[np.ndarray], points: Optional[int],
               seed: int, options: dict) -> dict:
    """Certified ReLU bounds of a linear layer over ``x`` (float64), at ranks below ``rank(X W^T)``, with the
    survey's fit stride (``survey_options``); ``x=None``: over a seeded sample of the unit sphere with
    ``b = 0`` (MATH.md section 1)."""
    from . import relu_singular_values

    limit = min(w.shape)
    zero_from = limit if x is None else min(limit, data_rank(w, x))
    ks = curve_ks(max(zero_from, 1), points)
    if x is not None:
        options = survey_options(options, x.shape[0], w.shape[1], w.shape[0])
    spectrum = relu_singular_values(w, b, x, ks, leaky_slope=layer.leaky_slope, seed=seed,
                                    **{"progress": False, **options})
    return _curve_dict(spectrum, zero_from, limit)


def survey_fit_stride(rows: int, cols: int, outputs: int) -> Optional[int]:
    """The fit stride of a table's bound curve, from the size of the layer over its points; None: no fits.

    One evaluation of the layer over its points costs ``rows x cols x outputs`` multiply-adds (``N P`` patch
    rows of ``cols`` values, ``outputs`` channels). Up to ``SURVEY_FIT_WORK`` every requested ``k`` is fitted;
    above, every ``s``-th (``relu_singular_values``' ``fit_stride``), ``s`` the smallest power of two with
    ``work <= s * SURVEY_FIT_WORK``; above ``SURVEY_MAX_STRIDE * SURVEY_FIT_WORK`` no ``k`` is fitted. The
    unfitted ``k`` take the truncated SVD, data-aware (plain and weighted reduced-rank regression, data
    projection), extended and previous-``k`` candidates. A fit's cost grows with ``k`` times that work, and
    at a survey's spacing of ranks the candidates win everywhere but at the last rank (measured on
    ResNet-18's curves at 32x32: the fits lowered the last bound by at most 7 % and left ``k10`` and the
    bound ratio unchanged, at twice the time). Every bound stays the exact error of its factors.
    """
    work = float(rows) * float(cols) * float(outputs)
    if work > SURVEY_MAX_STRIDE * SURVEY_FIT_WORK:
        return None
    stride = 1
    while work > stride * SURVEY_FIT_WORK:
        stride *= 2
    return stride


def survey_options(options: dict, rows: int, cols: int, outputs: int) -> dict:
    """``options`` with the survey's fit stride of a curve over ``rows`` points or patches
    (``survey_fit_stride``), unless they name a ``fit_stride``: no fits is ``max_steps=0``; stride 1 is left
    to the engine (its own budget may thin out a huge curve)."""
    if "fit_stride" in options:
        return options
    stride = survey_fit_stride(rows, cols, outputs)
    if stride is None:
        return {**options, "max_steps": 0}
    return {**options, "fit_stride": stride} if stride > 1 else options


def _conv_curve(layer: LayerInput, images: np.ndarray, points: Optional[int], seed: int, options: dict):
    """Channel-rank bounds of a convolution through ``layer.conv_bounds`` (``relusv.torch.relu_singular_values``)
    with the survey's fit stride (``survey_options``)."""
    limit = min(layer.matrix.shape)
    rank = getattr(layer.conv_bounds, "data_rank", None)
    zero_from = limit if rank is None else min(limit, rank(images))
    ks = curve_ks(max(zero_from, 1), points)
    rows = images.shape[0] * int(getattr(layer.conv_bounds, "positions", 1))
    options = survey_options(options, rows, layer.matrix.shape[1], layer.matrix.shape[0])
    spectrum = layer.conv_bounds(images, ks, seed, {"progress": False, **options})
    return _curve_dict(spectrum, zero_from, limit)


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


EXACT_CIRCULAR = "exact (circular)"


def operator_norm(layer: LayerInput, sigma_0: Optional[float], seed: int,
                  start: Optional[np.ndarray] = None) -> Tuple[Dict[str, Any], Optional[np.ndarray]]:
    """The table's operator-norm columns of the layer's linear map on its input, BatchNorm folded (MATH.md section 9).

    Returns ``(columns, vector)``: ``columns`` are ``operator_norm``, a
    certified upper bound of ``||A||``, ``operator_norm_lower``, a certified
    lower bound (attained by a unit input), and ``operator_norm_method``
    naming how they were obtained, with the relative gap
    ``(upper - lower) / upper`` for a bracket. A linear layer's norm is
    ``sigma_0`` ("exact"). A convolution's operator acts on ``C_in x H x W``
    inputs (``layer.input_shape``); ``layer.operator_norm_estimate``
    (``relusv.torch.conv_operator_norm``) gives it exactly (circular padding
    keeping ``H x W``; 1x1 kernels with zero padding, ``max_g sigma_0`` of the
    groups' kernel matrices) or as a certified bracket (small zero-padded
    layers: dense matrix with a Cholesky certificate; others: Lanczos from
    below, the circular convolution on the padded torus from above, within the
    iteration budget of ``conv_operator_norm``'s defaults), never a bare
    estimate from below. Grouped convolutions included. Without torch (no ``operator_norm_estimate``) only
    the circular stride-1 case is computed (``relusv.conv_singular_values``).
    ``vector`` is the unit input attaining the lower end of a Lanczos bracket
    (None otherwise): passed back as ``start`` for the same layer, it
    warm-starts the iteration (``relusv.torch.Monitor`` does so between
    measurements). A row with its own ``layer.norm`` rule (a multi-branch
    site's joint map, ``JointMap.operator_norm``) reports its exact value or
    certified bracket.
    """
    if layer.norm is not None:   # a joint map's own rule: exact, or a certified bracket
        return _norm_columns(*layer.norm(seed)), None
    if layer.kind == "linear":
        return _norm_columns(sigma_0, sigma_0, "exact"), None
    geometry, shape = layer.conv_geometry, layer.input_shape
    if geometry is None:
        return _norm_columns(float("nan"), float("nan"),
                             "not computed: asymmetric padding (padding='same' with an even kernel)"), None
    if shape is None or len(shape) != 3:
        return _norm_columns(float("nan"), float("nan"), "not computed: the input size is unknown"), None
    kernel, geometry = _kernel(layer, geometry)
    size = tuple(int(s) for s in shape[1:])
    if layer.operator_norm_estimate is None:
        return _circular_without_torch(kernel, size, geometry), None
    if start is not None and np.size(start) != int(np.prod(shape)):
        start = None   # the input size changed: a cold start
    result = layer.operator_norm_estimate(kernel, size, seed, geometry, start)
    if result.exact:
        return _norm_columns(result.estimate, result.estimate, result.method), None
    return _norm_columns(result.upper, result.lower, f"{result.method}, gap {result.gap:.1e}"), result.vector


def _kernel(layer: LayerInput, geometry: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The convolution kernel ``(C_out, C_in / G, kh, kw)`` of ``layer.matrix`` and its geometry: the matrix
    reshaped, or, where it is a grouped kernel's block-diagonal dense form ``(C_out, C_in kh kw)``, the groups'
    blocks read back from it (the same operator, ``G`` small convolutions instead of one dense one)."""
    shape = tuple(layer.weight_shape)
    if layer.matrix.size == int(np.prod(shape)):
        return layer.matrix.reshape(shape), geometry
    dense = layer.matrix.reshape(shape[0], -1, *shape[2:])
    groups = int(geometry.get("groups", 1))
    rows, columns = shape[0] // groups, shape[1]
    return np.concatenate([dense[g * rows:(g + 1) * rows, g * columns:(g + 1) * columns]
                           for g in range(groups)]), geometry


def _norm_columns(upper: float, lower: float, method: str) -> Dict[str, Any]:
    return {"operator_norm": float(upper), "operator_norm_lower": float(lower), "operator_norm_method": method}


def _circular_without_torch(kernel: np.ndarray, size: Tuple[int, int], geometry: Dict[str, Any]) -> Dict[str, Any]:
    """The exact norm of a circular stride-1 convolution keeping ``H x W`` by ``relusv.conv_singular_values``."""
    same = all(2 * p == k - 1 for p, k in zip(geometry["padding"], kernel.shape[2:]))   # output H x W
    if geometry["padding_mode"] == "circular" and same and tuple(geometry["stride"]) == (1, 1) and \
            tuple(geometry["dilation"]) == (1, 1):
        from . import conv_singular_values

        top = float(conv_singular_values(kernel, size, k=1, groups=geometry.get("groups", 1))[0])
        return _norm_columns(top, top, EXACT_CIRCULAR)
    return _norm_columns(float("nan"), float("nan"), "not computed: a bracket needs relusv.torch.conv_operator_norm")


def _layer_row(layer: LayerInput, acts: Dict[tuple, np.ndarray], groups: Design, settings: dict, details: dict,
               family: List[Tuple[Dict[str, Any], str, Comparison]], jobs: _Jobs) -> Dict[str, Any]:
    row: Dict[str, Any] = {"layer": layer.name, "kind": layer.kind, "module": layer.module,
                           "activation": layer.activation or "none", "relu": layer.relu, "folded": layer.folded,
                           "notes": "; ".join(layer.notes)}
    detail: Dict[str, Any] = {"relu_bounds": {}}
    if layer.weighted:
        # the columns in their place, filled when the spectrum (and norm) are computed
        row.update({"weight_shape": tuple(int(s) for s in layer.weight_shape),
                    "matrix_shape": tuple(layer.matrix.shape), "parameters": layer.parameters, "rank": None,
                    "sigma_0": float("nan"), "sigma_min": float("nan"), "stable_rank": float("nan"),
                    **_norm_columns(float("nan"), float("nan"), "pending")})
        jobs.later(jobs.spectra[layer.name], functools.partial(
            _fill_spectrum, row, detail, layer, jobs.norms.get(layer.name), settings["seed"]))
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
        row.update(_empty_summary(prefix, "pending"))   # the columns in their place, filled when computed
        jobs.later(jobs.submit(_site_comparison, acts[key], groups, settings["samples"], settings["trim"],
                               settings["seed"]),
                   functools.partial(_fill_site, row, detail, family, site, prefix))
    row.update(_relu_columns(layer, acts, groups, settings, detail, family, row, jobs))
    details[layer.name] = detail
    return row


def _fill_spectrum(row: Dict[str, Any], detail: Dict[str, Any], layer: LayerInput, norm: Any, seed: int,
                   values: np.ndarray) -> None:
    """The spectrum's columns of a weight layer's row from its singular ``values``, and the operator norm's
    (the future ``norm``, or for a linear layer ``sigma_0``)."""
    sigma = np.asarray(values, dtype=np.float64)
    row.update({"rank": rank_of_spectrum(sigma, layer.matrix.shape, layer.dtype),
                "sigma_0": float(sigma[0]), "sigma_min": float(sigma[-1]),
                "stable_rank": float(np.sum(sigma ** 2) / sigma[0] ** 2) if sigma[0] > 0 else 0.0})
    row.update((operator_norm(layer, float(sigma[0]), seed) if norm is None else norm.result())[0])
    detail["singular_values"] = sigma.tolist()


def _fill_site(row: Dict[str, Any], detail: Dict[str, Any], family: List[Tuple[Dict[str, Any], str, Comparison]],
               site: str, prefix: str, result: Tuple[Comparison, Dict[str, Dict[str, List[float]]]]) -> None:
    comparison, values = result
    row.update(_summary_columns(prefix, comparison, values))
    family.append((row, f"{prefix}gmw", comparison))
    detail[site] = values
    if not any(np.any(np.asarray(values[g]["gmw"]) != 0) for g in GROUPS):
        note = (f"GMW at the {site}: 0 for every set of both groups (the activations there are the same for every "
                "probe point): effect and ratio undefined (NaN)")
        row["notes"] = "; ".join(filter(None, (row.get("notes", ""), note)))


def _fill_curve(row: Dict[str, Any], detail: Dict[str, Any], g: str, curve: dict) -> None:
    detail["relu_bounds"][g] = curve
    summary = _curve_summary(curve)
    row.update({f"relu_k10_{g}": summary["k10"], f"relu_bound_ratio_{g}": summary["ratio"]})


def _relu_columns(layer: LayerInput, acts: Dict[tuple, np.ndarray], groups: Design, settings: dict, detail: dict,
                  family: List[Tuple[Dict[str, Any], str, Comparison]], row: Dict[str, Any],
                  jobs: _Jobs) -> Dict[str, Any]:
    """The ReLU columns of ``row`` (returned; the ``s_0`` comparison joins ``family`` as a member of ``row``).
    The bound curves are handed to ``jobs`` and fill their columns of ``row`` when done (``_Jobs.finish``)."""
    out: Dict[str, Any] = empty_columns("s0", "")
    out["s0_verdict"] = ""
    for g in GROUPS:
        out.update({f"relu_k10_{g}": None, f"relu_bound_ratio_{g}": float("nan")})
    out["s0_unit_sphere"] = float("nan")
    if not layer.weighted:
        out["relu_bounds"] = "not a weight layer"
        return out
    if not layer.relu:
        out["relu_bounds"] = _not_bounded(layer)
        return out
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
    comparison = _exact_top(layer, acts[(layer.name, "output")], groups, detail)
    if not settings["relu_bounds"]:
        # s_0 is exact and cheap, so its values are given; it is not tested (not a member of the family)
        out.update({key: value for key, value in comparison.columns("s0").items()
                    if key.endswith(("_correct", "_correct_spread", "_incorrect", "_incorrect_spread"))})
        out["s0_verdict"] = "not compared: relu_bounds=False (s_0 given, not tested)"
        out["relu_bounds"] = "not requested (relu_bounds=False); s_0 exact"
        return out
    out.update(comparison.columns("s0"))
    family.append((row, "s0", comparison))
    if layer.kind != "linear" and layer.conv_bounds is None:
        out["relu_bounds"] = "not computed: convolution bounds need relusv.torch.relu_singular_values"
        return out
    options = jobs.curve_options(settings["relu_options"])
    for k, g in enumerate(GROUPS):
        x = acts[(layer.name, "input")][np.sort(groups.observed[0, k])]
        work = float(x.shape[0]) * int(getattr(layer.conv_bounds, "positions", 1)) * w.size
        if layer.conv_bounds is None:
            args = (relu_curve, layer, w, b, x.astype(np.float64), settings["relu_points"], settings["seed"], options)
        else:
            images = x.reshape(x.shape[0], *layer.input_shape).astype(np.float64)
            args = (_conv_curve, layer, images, settings["relu_points"], settings["seed"], options)
        jobs.curve(layer, work, args, functools.partial(_fill_curve, row, detail, g))
    out["relu_bounds"] = "computed"
    return out


def kernel_singular_values(layer: LayerInput) -> np.ndarray:
    """The singular values of ``layer.matrix`` (``relusv.singular_values``) to the layer's ``value_tolerance``. A
    grouped convolution's matrix is its block-diagonal dense kernel (``C_out x C_in kh kw``, zero outside the
    groups' blocks): the engine finds the independent blocks and returns the union of their values, the same
    spectrum (MATH.md section 9) for the work of the blocks (a depthwise layer of 960 channels: 960 SVDs of
    1 x 9 instead of one of 960 x 8640)."""
    from . import singular_values

    return singular_values(layer.matrix, tolerance=value_tolerance(layer))


def value_tolerance(layer: LayerInput) -> float:
    """The accuracy, relative to ``sigma_0``, the table needs a layer's singular values to: the machine epsilon
    of the weights' stored precision (``machine_epsilon``), the accuracy of an SVD in that precision. For
    float32 weights this lets the engine take the values (and a wide layer's shared pairs) from the Gram matrix
    where it resolves them (``relusv.singular_values``' ``tolerance``), each within about ``1.8e-12 sigma_0``; for
    float64 weights it asks the SVD."""
    return machine_epsilon(layer.dtype)


class _Jobs:
    """The table's work on a pool (``relusv._workers.NativeWorkers``), while the calling thread walks the rows:
    per layer in order, the singular values of its kernel (from the shared SVD of a bounded layer's ``W``,
    ``shared_vectors``) and the operator norm of a convolution or joint map, submitted first; then, as the
    rows reach them, the GMW comparison of every site; after the rows, the bound curves, largest first (each
    native call on one thread: ``threads=1`` for the curves unless ``relu_options`` names a count). ``later``
    pairs a result with what writes it into its row; ``finish`` waits for them in the rows' order. No value
    depends on the pool's size, which changes the time only."""

    def __init__(self, pool: Any, layers: Sequence[LayerInput], seed: int, bounded: Callable[[LayerInput], bool],
                 points: int):
        self.pool = pool
        self.spectra: Dict[str, Any] = {}
        self.norms: Dict[str, Any] = {}
        self.svds: Dict[str, Any] = {}
        for layer in layers:
            if layer.weighted:
                if bounded(layer):   # one SVD of W for both groups' curves (and the spectrum where W is the same)
                    w = curve_matrix(layer)
                    svd = self.svds[layer.name] = pool.submit(
                        WeightSVD, np.asarray(w, dtype=np.float64), shared_vectors(layer, points),
                        value_tolerance(layer))
                    self.spectra[layer.name] = self._after(svd, _spectrum_of, svd) if \
                        w is layer.matrix else pool.submit(kernel_singular_values, layer)
                else:
                    self.spectra[layer.name] = pool.submit(kernel_singular_values, layer)
                if layer.norm is not None or layer.kind != "linear":   # a linear layer's norm is its sigma_0
                    self.norms[layer.name] = pool.submit(operator_norm, layer, None, seed)
        self.pending: List[Tuple[Any, Callable[[Any], None]]] = []
        self.curves: List[Tuple[float, int, tuple]] = []

    def submit(self, fn: Callable, *args: Any) -> Any:
        return self.pool.submit(fn, *args)

    def later(self, future: Any, fill: Callable[[Any], None]) -> None:
        self.pending.append((future, fill))

    def curve(self, layer: LayerInput, work: float, args: tuple, fill: Callable[[Any], None]) -> None:
        """A bound curve of ``layer`` of estimated ``work``, ``args = (fn, ..., options)``, submitted by
        ``start_curves`` (with the layer's shared SVD of ``W`` in its options); filled in this order."""
        if layer.name in self.svds:
            args = (_with_weight_svd, self.svds[layer.name]) + args
        self.curves.append((work, len(self.pending), args, layer.name))
        self.pending.append((None, fill))

    def start_curves(self) -> None:
        """Submits the curves, the largest first (so that no large one runs alone at the end), those that read
        a shared SVD still being computed when it is done (``_after``); a layer's shared SVD is freed as soon
        as its last curve ends (``_release_when_done``)."""
        counts: Dict[str, int] = {}
        for *_, name in self.curves:
            counts[name] = counts.get(name, 0) + 1
        release = {name: _release_when_done(self.svds[name], count) for name, count in counts.items()
                   if name in self.svds}
        for _, slot, args, name in sorted(self.curves, key=lambda c: (-c[0], c[1])):
            future = self._after(self.svds[name], *args) if name in self.svds else self.pool.submit(*args)
            if name in release:
                future.add_done_callback(release[name])
            self.pending[slot] = (future, self.pending[slot][1])
        self.curves = []

    def _after(self, first: Any, fn: Callable, *args: Any) -> Any:
        """A future of ``fn(*args)``, submitted once the future ``first`` is done: a spectrum or curve read from
        a layer's shared SVD enters the queue when the SVD is ready, so that no worker waits for it while other
        work is queued."""
        if first.done():
            return self.pool.submit(fn, *args)
        out: Future = Future()

        def submit(_first: Any) -> None:
            # Runs where ``first`` ends (a worker), or here if it has just ended. After an error or Ctrl-C
            # ``NativeWorkers`` refuses new work (RuntimeError) before it shuts its pool down, so this never
            # submits into a pool that is cancelling its queue.
            try:
                self.pool.submit(fn, *args).add_done_callback(functools.partial(_settle, out))
            except Exception as error:
                out.set_exception(error)
        first.add_done_callback(submit)
        return out

    @staticmethod
    def curve_options(options: dict) -> dict:
        return {"threads": 1, **options}

    def finish(self, show: Optional[bool]) -> None:
        """Waits for the pending results in the order they were submitted and writes them into their rows;
        then frees the shared SVDs."""
        for future, fill in progress_bar(self.pending, "comparisons and bound curves", show=show):
            fill(future.result())
        for svd in self.svds.values():   # those of layers whose curves were not computed
            svd.result().close()


def _settle(out: Future, done: Future) -> None:
    """Gives ``out`` the outcome of ``done``."""
    if done.cancelled():
        out.cancel()
    elif done.exception() is not None:
        out.set_exception(done.exception())
    else:
        out.set_result(done.result())


def _release_when_done(svd: Any, curves: int) -> Callable[[Any], None]:
    """A done-callback closing the ``WeightSVD`` of the future ``svd`` once ``curves`` curves have ended (in
    any order, on any thread): a wide layer's factors are not held until the whole table is done."""
    lock, left = threading.Lock(), [curves]

    def done(_future: Any) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last and svd.done() and not svd.cancelled() and svd.exception() is None:
            svd.result().close()
    return done


def shared_vectors(layer: LayerInput, points: int) -> Optional[int]:
    """The pairs of singular vectors a linear layer's shared SVD keeps when its curves run over groups of at
    most ``points`` points: their ``k`` stay below ``rank(X W^T) <= points`` (``relu_curve``), so ``points``
    pairs suffice (``WeightSVD(W, vectors)``, less than half the work of all pairs on a wide layer). None, all
    pairs, for a convolution or joint map (whose curves run over many patches), where ``points`` reaches half
    of ``min(m, n)``, and below ``LEADING_SVD_WORK`` (a small layer's full SVD costs little, and keeps its
    curves bit for bit those of a call of ``relu_singular_values`` alone)."""
    m, n = layer.matrix.shape
    p = min(m, n)
    if layer.conv_bounds is not None or 2 * points >= p or float(m) * n * p < LEADING_SVD_WORK:
        return None
    return max(points, 1)


def curve_matrix(layer: LayerInput) -> np.ndarray:
    """The ``W`` of the layer's bound curves: its joint map's matrix where it has one (convolutions, sites),
    else ``layer.matrix``."""
    return layer.matrix if layer.conv_bounds is None else layer.conv_bounds.matrix


def _spectrum_of(svd: Any) -> np.ndarray:
    """The kernel spectrum read from a layer's shared SVD (a future of a ``WeightSVD`` of ``layer.matrix``)."""
    return svd.result().values


def _with_weight_svd(svd: Any, fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` with ``weight_svd`` (the result of the future ``svd``) added to its last argument, the
    curve's options."""
    *head, options = args
    return fn(*head, {**options, "weight_svd": svd.result()})


def top_values(layer: LayerInput, outputs: np.ndarray) -> np.ndarray:
    """Per point ``||phi(x) - phi_0||`` (float64), ``phi_0`` the activation of the bias alone (broadcast over
    positions for a convolution): ``s_0(phi; X)`` is their maximum over ``X`` (MATH.md sections 2 and 9)."""
    channels = layer.matrix.shape[0]
    bias = np.zeros(channels) if layer.bias is None else layer.bias
    at_zero = np.where(bias > 0, bias, layer.leaky_slope * bias)
    at_zero = np.repeat(at_zero, outputs.shape[1] // channels) if layer.phi_zero is None else \
        layer.phi_zero(outputs.shape[1])
    # By blocks of rows: the float64 difference of a block, not of the whole set (VGG-11's first layer at 32x32
    # over 512 points: 268 MB), each row's norm as ``np.linalg.norm`` forms it (the same value).
    out = np.empty(outputs.shape[0])
    step = max(1, TOP_VALUES_BLOCK // max(1, outputs.shape[1]))
    for start in range(0, outputs.shape[0], step):
        block = outputs[start:start + step].astype(np.float64)
        block -= at_zero
        out[start:start + step] = np.sqrt(np.add.reduce(block * block, axis=1))
    return out


def _exact_top(layer: LayerInput, outputs: np.ndarray, groups: Design, detail: dict) -> Comparison:
    """The comparison of the exact ``s_0(phi; X) = max_x ||phi(x) - phi_0||`` (MATH.md sections 2, 9 and 11):
    the functional ``max`` of ``top_values``, on the table's design."""
    comparison = compare(groups, maximum_functional(top_values(layer, outputs)))
    detail["s0"] = {"correct": comparison.correct_values, "incorrect": comparison.incorrect_values}
    return comparison


def _has_curves(layer: LayerInput, settings: dict, groups: Design) -> bool:
    """Whether ``_relu_columns`` hands bound curves over the data to the jobs for this layer."""
    return bool(settings["relu_bounds"] and groups.comparable and layer.weighted and layer.relu and
                (layer.kind == "linear" or layer.conv_bounds is not None))


#: The note of a layer hooked inside a module that does not trace: its activation is not known.
NOT_TRACED = "what follows it is not traced"


def _not_bounded(layer: LayerInput) -> str:
    """Why a weight layer has no ReLU quantities: its activation, or for a ReLU the notes that say why not."""
    activation = layer.activation or "none"
    if activation == "leaky_relu" and not _validation.relu_family_slope(layer.leaky_slope):
        return f"not a ReLU layer (activation: leaky_relu with slope {layer.leaky_slope:g}, outside [0, 1))"
    if activation in ("relu", "leaky_relu") and layer.notes:
        why = "; ".join(layer.notes)
        return why if "not computed" in why else f"not computed: {why}"
    untraced = [note for note in layer.notes if NOT_TRACED in note]
    if layer.activation is None and untraced:
        return f"not computed: the activation after it is not known ({untraced[0]})"
    unseen = [note for note in layer.notes if "registration order" in note]
    return f"not a ReLU layer (activation: {activation})" + (f"; {unseen[0]}" if unseen else "")


def table_settings(seed: int = 0, samples: int = 100, trim: float = 0.1, relu_bounds: bool = True,
                   relu_points: Optional[int] = DEFAULT_RELU_POINTS, relu_options: Optional[dict] = None,
                   unit_sphere: bool = False, sphere_points: int = 2000,
                   sphere_max_steps: Optional[int] = None) -> Dict[str, Any]:
    """The settings ``table_records`` reads, with the default step budget filled in; ``trim`` and the names in
    ``relu_options`` checked."""
    from . import relu_singular_values

    accepted = set(inspect.signature(relu_singular_values).parameters) - {"W", "b", "X", "ks"}
    unknown = sorted(set(relu_options or {}) - accepted)
    if unknown:
        raise InvalidInputError(f"relu_options: unknown option(s) {', '.join(unknown)}; relu_singular_values "
                                f"takes {', '.join(sorted(accepted))}")
    return {"seed": _validation.seed(seed), "samples": samples, "trim": _validation.trim(trim), "relu_bounds": relu_bounds,
            "relu_points": relu_points, "relu_options": {"max_steps": DEFAULT_RELU_MAX_STEPS, **(relu_options or {})},
            "unit_sphere": unit_sphere, "sphere_points": sphere_points, "sphere_max_steps": sphere_max_steps}


def family_size(layers: Sequence[LayerInput], acts: Dict[tuple, np.ndarray], groups: Design,
                relu_bounds: bool) -> int:
    """The comparisons ``table_records`` makes (its Holm family): the GMW at every captured site (a layer's
    input and output), and ``s_0`` of every ReLU layer when ``relu_bounds``; none when the groups are not
    compared."""
    if not groups.comparable:
        return 0
    return sum(sum((layer.name, site) in acts for site in SITES) + int(layer.weighted and layer.relu and relu_bounds)
               for layer in layers)


def table_records(layers: Sequence[LayerInput], groups: Design, acts: Dict[tuple, np.ndarray],
                  settings: dict, show: Optional[bool] = None,
                  dimensions: Optional[Dict[tuple, int]] = None) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """``(rows, attrs)`` of the table: one row per layer, and the probe summary with per-layer ``details``.

    ``acts[(name, site)]`` holds the activations (flattened rows) of the pooled points ``groups.pool`` in that
    order, at ``site`` ``"input"`` (weight layers) and ``"output"`` (after the activation). ``settings``:
    ``seed``, ``samples``, ``trim``, ``relu_bounds``, ``relu_points``, ``relu_options``, ``unit_sphere``,
    ``sphere_points``, ``sphere_max_steps``. ``dimensions[(name, site)]``: the size of a point there
    (default: the width of ``acts``; given when no points were chosen). Every comparison of the table (GMW
    at each site, ``s_0``) is one member of a Holm family (MATH.md section 11); ``attrs["family"]`` counts them.
    A design whose count of relabellings was left open (``permutations=None``) gets it from the family's size
    here (``relusv.analysis.compare.for_family``).
    """
    dimensions = {**{key: int(a.shape[1]) for key, a in acts.items()}, **(dimensions or {})}
    settings = {**settings, "dimensions": dimensions}
    expected = family_size(layers, acts, groups, settings["relu_bounds"])
    groups = for_family(groups, expected)
    details: Dict[str, Any] = {}
    family: List[Tuple[Dict[str, Any], str, Comparison]] = []
    with NativeWorkers() as pool:
        largest = max((len(groups.observed[0, k]) for k in range(len(GROUPS))), default=0) \
            if groups.comparable else 0
        jobs = _Jobs(pool, layers, settings["seed"], lambda layer: _has_curves(layer, settings, groups), largest)
        rows = [_layer_row(layer, acts, groups, settings, details, family, jobs)
                for layer in progress_bar(layers, "layers", show=show)]
        jobs.start_curves()
        jobs.finish(show)
    if len(family) != expected:
        raise RuntimeError(f"the table made {len(family)} comparisons, {expected} were foreseen")
    adjust([c for _, _, c in family], groups.alpha)
    note = resolution_note(int(groups.settings.get("permutations") or DEFAULT_PERMUTATIONS), len(family), groups.alpha)
    if note:
        warnings.warn(note, stacklevel=3)
    for row, prefix, c in family:
        row[f"{prefix}_p_adjusted"], row[f"{prefix}_verdict"] = c.p_adjusted, c.verdict
    n = int(groups.correct.size)
    attrs = {
        "points": n, "accuracy": float(groups.correct.mean()), "correct": int(groups.correct.sum()),
        "incorrect": int(n - groups.correct.sum()), "group_size": groups.size, "repeats": groups.repeats,
        "comparison": groups.reason, "settings": {k: v for k, v in settings.items() if k != "dimensions"},
        "design": dict(groups.settings), "family": len(family), "family_note": note, "pool": groups.pool.tolist(),
        "subsets": {g: [idx.tolist() for idx in sets] for g, sets in groups.subsets().items()},
        "correct_mask": groups.correct.tolist(), "details": details,
    }
    return rows, attrs
