"""The report's per-layer numbers: ``relusv.torch.analyze``'s table, reshaped for ``report.json``.

Nothing is computed here: the numbers are the rows of ``relusv.layer_table``,
through ``relusv.torch.analyze`` for a torch model, or, for a NumPy MLP when
torch is not installed, on the NumPy forward pass. ``analyze`` finds the layers (qualified module
names, BatchNorm folded), splits the points into correctly and incorrectly
classified, compares them by the calibrated procedure of MATH.md section 11
(``repeats`` equal-size subsample pairs on the same directions, permutation
p-value, bootstrap interval of the effect, Holm over the table), and bounds the
ReLU singular values over each group's inputs at ranks below ``rank(X W^T)``
(above it ``s_k = 0`` exactly, MATH.md section 2) and over a seeded sample of
the unit sphere with ``b = 0`` (MATH.md section 1). This module turns its
rows into the report's ``layers`` and ``depths`` sections.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from ..analysis.compare import COMPARISON_FIELDS, GROUPS, spread
from ..layer_table import LayerInput, compare_groups, table_records, table_settings
from .data import LabelledData
from .model import LAYER_NAME, Network
from .settings import ReportSettings

CURVES = GROUPS + ("unit_sphere",)  # ReLU bound curves per hidden layer: over each group, over a sphere sample


def _table_settings(settings: ReportSettings) -> dict:
    return table_settings(settings.seed, settings.gmw_samples, settings.gmw_trim, True, settings.spectrum_points,
                          {"max_steps": settings.spectrum_max_steps, "time_budget": settings.spectrum_time_budget},
                          True, settings.sphere_points, settings.sphere_max_steps)


def run(module, network: Optional[Network], data: LabelledData, settings: ReportSettings,
        show_progress: Optional[bool] = None) -> Tuple[List[dict], dict]:
    """``(rows, attrs)`` of the table every section is built from: ``relusv.torch.analyze`` on ``module``, or the
    same table code on the NumPy forward pass of ``network`` when there is no module (torch not installed)."""
    s = _table_settings(settings)
    if module is not None:
        from ..torch import analyze

        table = analyze(module, data.x, data.y, seed=s["seed"], repeats=settings.repeats,
                        permutations=settings.permutations, bootstrap=settings.bootstrap, alpha=settings.alpha,
                        max_group_size=settings.max_group_size, samples=s["samples"], trim=s["trim"],
                        relu_points=s["relu_points"], relu_options=s["relu_options"], unit_sphere=True,
                        sphere_points=s["sphere_points"], sphere_max_steps=s["sphere_max_steps"],
                        progress=show_progress)
        return table.to_dict("records"), dict(table.attrs)
    correct = network.predict(data.x) == data.y
    groups = compare_groups(correct, None, settings.max_group_size, settings.repeats, settings.seed,
                            settings.permutations, settings.bootstrap, settings.alpha)
    h = network.activations(data.x[groups.chosen()])
    inputs, acts, dims = [], {}, {}
    for i, layer in enumerate(network.layers):
        name = LAYER_NAME.format(i)
        inputs.append(LayerInput(name, "linear", "DoubleLinear" if layer.factors is not None else "Linear",
                                 "relu" if layer.relu else None, layer.relu, 0.0, "",
                                 () if layer.relu else ("no activation: is the model's output",), layer.shape,
                                 layer.weight, layer.bias, layer.parameters))
        acts[(name, "input")], acts[(name, "output")] = h[i], h[i + 1]
        dims[(name, "input")], dims[(name, "output")] = layer.shape[1], layer.shape[0]
    rows, attrs = table_records(inputs, groups, acts, s, show_progress, dims)
    attrs["discovery"] = {"method": "numpy chain", "skipped": {}, "trace_error": None, "layers": []}
    return rows, attrs


def _summary(values: List[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "spread": spread(v), "values": [float(t) for t in v]}


def comparison_fields(row: dict, prefix: str) -> Optional[dict]:
    """The calibrated comparison ``{prefix}_*`` of a table row (MATH.md section 11), None when not compared."""
    if not np.isfinite(row.get(f"{prefix}_p_value", float("nan"))):
        return None
    return {key: _none(float(row[f"{prefix}_{key}"])) for key in COMPARISON_FIELDS}


def _comparison(site: Optional[dict]) -> Optional[dict]:
    """``{"gmw": {group: summary}, "effective_dimension": {...}}`` of one site, or None."""
    if site is None:
        return None
    return {key: {g: _summary(site[g][key]) for g in GROUPS} for key in ("gmw", "effective_dimension")}


def _none(value):
    """NaN (pandas' missing value) as None."""
    if value is None:
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def layers_section(rows: List[dict], attrs: dict) -> List[dict]:
    """One entry per weight layer of the table, in execution order (schema ``layers``)."""
    details = attrs["details"]
    out = []
    for row in rows:
        if row["kind"] not in ("linear", "conv2d"):
            continue
        d = details[row["layer"]]
        top = d.get("s0")
        out.append({
            "index": len(out),
            "name": row["layer"],
            "kind": row["kind"],
            "module": row["module"],
            "activation": row["activation"],
            "relu": bool(row["relu"]),
            "folded": row["folded"],
            "notes": row["notes"],
            "double": row["module"].startswith("Double"),
            "shape": [int(s) for s in row["matrix_shape"]],
            "weight_shape": [int(s) for s in row["weight_shape"]],
            "rank": int(row["rank"]),
            "parameters": int(row["parameters"]),
            "stable_rank": float(row["stable_rank"]),
            "operator_norm": _none(row["operator_norm"]),
            "operator_norm_method": row["operator_norm_method"],
            "singular_values": d["singular_values"],
            "relu_status": row["relu_bounds"],
            "relu_bounds": {g: d["relu_bounds"].get(g) for g in CURVES},
            "top_bound": None if top is None else {g: _summary(top[g]) for g in GROUPS},
            "top_bound_comparison": comparison_fields(row, "s0"),
            "top_bound_verdict": row["s0_verdict"],
        })
    return out


def _depth_name(row: dict) -> str:
    if row["relu"] and row["activation"] in ("relu", "leaky_relu"):     # ReLU6 rows say relu6
        return f"{row['layer']} (ReLU)"
    if row["activation"] == "none":
        return f"{row['layer']} (logits)" if "model's output" in row["notes"] else f"{row['layer']} (no activation)"
    return f"{row['layer']} ({row['activation']})"


def depths_section(rows: List[dict], attrs: dict) -> List[dict]:
    """The GMW comparison at the first layer's input, then at each layer's output (schema ``depths``)."""
    details = attrs["details"]
    rows = [r for r in rows if r["kind"] in ("linear", "conv2d")]
    out = []
    sites = [(rows[0], "input", "input", "input_")] + [(r, "output", _depth_name(r), "") for r in rows]
    for depth, (row, site, name, prefix) in enumerate(sites):
        entry = {"depth": depth, "name": name, "layer": row["layer"], "dimension": int(row[f"{prefix}dimension"])}
        comparison = _comparison(details[row["layer"]][site])
        entry.update(comparison or {"gmw": None, "effective_dimension": None})
        entry["comparison"] = comparison_fields(row, f"{prefix}gmw")
        entry["verdict"] = row[f"{prefix}gmw_verdict"]
        out.append(entry)
    return out


def subsets(attrs: dict) -> Dict[str, np.ndarray]:
    """The compared index sets: ``correct_<r>`` / ``incorrect_<r>`` per repeat (a pool used whole repeats)."""
    chosen = attrs["subsets"]
    out = {}
    if not attrs["group_size"]:
        return out
    for r in range(attrs["repeats"]):
        for g in GROUPS:
            out[f"{g}_{r}"] = np.asarray(chosen[g][r % len(chosen[g])], dtype=np.int64)
    return out
