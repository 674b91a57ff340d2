"""The report's per-layer numbers: ``relusv.torch.analyze``'s table, reshaped for ``report.json``.

Nothing is computed here: ``analyze`` finds the layers (qualified module
names, BatchNorm folded), splits the points into correctly and incorrectly
classified, compares them on equal-size sets (MATH.md section 6: ``repeats``
subsample pairs, direction seed ``seed + r`` in repeat ``r``), and bounds the
ReLU singular values over each group's inputs at ranks below ``rank(X W^T)``
(above it ``s_k = 0`` exactly, MATH.md section 2) and over a seeded sample of
the unit sphere with ``b = 0`` (MATH.md section 1). This module turns its
rows into the report's ``layers`` and ``depths`` sections.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from .settings import ReportSettings

GROUPS = ("correct", "incorrect")
CURVES = GROUPS + ("unit_sphere",)  # ReLU bound curves per hidden layer: over each group, over a sphere sample


def run(module, x, y, settings: ReportSettings, show_progress: Optional[bool] = None):
    """``relusv.torch.analyze`` with the report's settings: the table every section is built from."""
    from ..torch import analyze

    return analyze(module, x, y, seed=settings.seed, repeats=settings.repeats,
                   max_group_size=settings.max_group_size, samples=settings.gmw_samples, trim=settings.gmw_trim,
                   relu_points=settings.spectrum_points,
                   relu_options={"max_steps": settings.spectrum_max_steps, "time_budget": settings.spectrum_time_budget},
                   unit_sphere=True, sphere_points=settings.sphere_points, sphere_max_steps=settings.sphere_max_steps,
                   progress=show_progress)


def _summary(values: List[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "spread": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "values": [float(t) for t in v]}


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


def layers_section(table) -> List[dict]:
    """One entry per weight layer of the table, in execution order (schema ``layers``)."""
    details = table.attrs["details"]
    out = []
    for row in table.to_dict("records"):
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
            "singular_values": d["singular_values"],
            "relu_status": row["relu_bounds"],
            "relu_bounds": {g: d["relu_bounds"].get(g) for g in CURVES},
            "top_bound": None if top is None else {g: _summary(top[g]) for g in GROUPS},
            "top_bound_confidence": _none(row["s0_confidence"]),
            "top_bound_verdict": row["s0_verdict"],
        })
    return out


def _depth_name(row: dict) -> str:
    if row["relu"]:
        return f"{row['layer']} (ReLU)"
    if row["activation"] == "none":
        return f"{row['layer']} (logits)" if "model's output" in row["notes"] else f"{row['layer']} (no activation)"
    return f"{row['layer']} ({row['activation']})"


def depths_section(table) -> List[dict]:
    """The GMW comparison at the first layer's input, then at each layer's output (schema ``depths``)."""
    details = table.attrs["details"]
    rows = [r for r in table.to_dict("records") if r["kind"] in ("linear", "conv2d")]
    out = []
    sites = [(rows[0], "input", "input", "input_")] + [(r, "output", _depth_name(r), "") for r in rows]
    for depth, (row, site, name, prefix) in enumerate(sites):
        entry = {"depth": depth, "name": name, "layer": row["layer"], "dimension": int(row[f"{prefix}dimension"])}
        comparison = _comparison(details[row["layer"]][site])
        entry.update(comparison or {"gmw": None, "effective_dimension": None})
        entry["confidence"] = _none(row[f"{prefix}gmw_confidence"])
        entry["verdict"] = row[f"{prefix}gmw_verdict"]
        out.append(entry)
    return out


def subsets(table) -> Dict[str, np.ndarray]:
    """The compared index sets: ``correct_<r>`` / ``incorrect_<r>`` per repeat (a group used whole repeats)."""
    chosen = table.attrs["subsets"]
    out = {}
    if not table.attrs["group_size"]:
        return out
    for r in range(table.attrs["repeats"]):
        for g in GROUPS:
            out[f"{g}_{r}"] = np.asarray(chosen[g][r % len(chosen[g])], dtype=np.int64)
    return out
