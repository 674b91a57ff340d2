"""The paper's observations (MATH.md section 6), checked on the report's numbers.

Each finding is a plain record with the numbers it rests on, so the page and
the command line state them the same way, true or not:

The depth sequence is the network's main path of activation sites: the
input, then every row whose output is an activation (ReLU sites, among them
the multi-branch sites of residual blocks, and other activations), in graph
order. Rows whose output feeds no activation — a residual branch's raw
output before the sum, a parallel downsample, the logits — are not depth
steps (``on_main_path``).

- per hidden layer: the calibrated comparison of the GMW of the correctly
  and incorrectly classified sets (MATH.md section 11, from
  ``relusv.torch.analyze``): the verdict ``correct larger`` / ``incorrect
  larger`` where the Holm-adjusted permutation p-value is below ``alpha``,
  else ``no difference shown`` (never "same"), stated with the adjusted p
  and the interval of the effect ``D / mean(f)``;
- does the GMW grow with depth through the hidden layers (input first), each
  step by more than the two spreads?
- are the ReLU bounds below the linear singular values? Over data the chain
  ``s_k(phi; X) <= sigma_k max ||x||`` (MATH.md section 2) holds by
  construction, so the informative number is how far below: the ratio
  ``bound_k / (sigma_k max ||x||)``; also whether ``bound_k <= sigma_k`` holds
  without the radius; and over a sample of the unit sphere (group
  ``unit_sphere``: ``b = 0``, radius 1), where the ratio ``bound_k / sigma_k``
  compares with Lemma 5's ``s_k <= sigma_k`` over the whole ball (the sample
  misses the worst directions, so it flatters the layer);
- the same comparison of the top ReLU singular value ``s_0`` (exact: the
  operator norm over the set, on every repeat's subset).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from ..analysis.compare import COMPARISON_FIELDS, DEFAULT_ALPHA


def on_main_path(d: dict) -> bool:
    """A depth entry is a step of the main path: the input, or a row whose output is an activation's."""
    if d["depth"] == 0:
        return True
    # the entry's name states the row's activation: "(ReLU)", "(relu6)", ..., "(no activation)" or "(logits)"
    return not d["name"].endswith(("(logits)", "(no activation)"))


def _stated(comparison: Optional[dict]) -> dict:
    """The effect, its interval and the p-values of a comparison (None where not compared)."""
    return {key: None if comparison is None else comparison[key] for key in COMPARISON_FIELDS if key != "difference"}


def statement(verdict: str, comparison: Optional[dict], level: float) -> str:
    """The verdict in words, exactly: ``correct larger (Holm-adjusted p = 0.002; effect +4.1 %, 95 % interval
    [+2.0 %, +6.3 %])``; ``no difference shown (...)`` where adjusted ``p >= alpha``; the reason when not compared."""
    if comparison is None or comparison["p_adjusted"] is None:
        return verdict
    if any(comparison[key] is None for key in ("effect", "effect_low", "effect_high")):
        # a relative effect of two zero widths (constant points), or of widths beyond float64's range
        return f"{verdict} (Holm-adjusted p = {comparison['p_adjusted']:.3g}; relative effect undefined)"
    return (f"{verdict} (Holm-adjusted p = {comparison['p_adjusted']:.3g}; effect {100 * comparison['effect']:+.1f} %, "
            f"{100 * level:.0f} % interval [{100 * comparison['effect_low']:+.1f} %, "
            f"{100 * comparison['effect_high']:+.1f} %])")


def _gmw_rows(depths: List[dict], alpha: float) -> List[dict]:
    rows = []
    for d in depths:
        if d["gmw"] is None or d["depth"] == 0 or not on_main_path(d):
            continue
        c, i = d["gmw"]["correct"], d["gmw"]["incorrect"]
        rows.append({
            "depth": d["depth"], "name": d["name"],
            "correct_mean": c["mean"], "correct_spread": c["spread"],
            "incorrect_mean": i["mean"], "incorrect_spread": i["spread"],
            "correct_larger": d["verdict"] == "correct larger",
            **_stated(d["comparison"]),
            "verdict": d["verdict"], "statement": statement(d["verdict"], d["comparison"], 1 - alpha),
        })
    return rows


def _grows(depths: List[dict], group: str) -> Optional[bool]:
    """Every step from one depth to the next along the main path larger than the two spreads together."""
    values = [d["gmw"][group] for d in depths if d["gmw"] is not None and on_main_path(d)]
    if len(values) < 2:
        return None
    return all(b["mean"] - a["mean"] > a["spread"] + b["spread"] for a, b in zip(values, values[1:]))


def _bound_rows(layers: List[dict]) -> List[dict]:
    rows = []
    for layer in layers:
        for group, curve in layer["relu_bounds"].items():
            if curve is None:
                continue
            sigma = np.asarray(curve["sigma"])
            bound = np.asarray(curve["bound"])
            keep = sigma > 0
            ratio = bound[keep] / (sigma[keep] * curve["radius"]) if curve["radius"] > 0 else np.zeros(0)
            rows.append({
                "layer": layer["index"], "name": layer["name"], "group": group,
                "top_bound": float(bound[0]) if bound.size and curve["ks"][0] == 0 else None,
                "sigma_0": float(layer["singular_values"][0]),
                "radius": curve["radius"],
                "ratio_to_scaled_sigma_max": float(ratio.max()) if ratio.size else None,
                "ratio_to_scaled_sigma_median": float(np.median(ratio)) if ratio.size else None,
                "below_scaled_sigma": bool(np.all(bound <= sigma * curve["radius"] * (1 + 1e-9) + 1e-12)),
                "below_sigma": bool(np.all(bound <= sigma * (1 + 1e-9) + 1e-12)),
            })
    return rows


def findings(depths: List[dict], layers: List[dict], alpha: float = DEFAULT_ALPHA) -> dict:
    """The findings records; ``alpha`` is the level the table's comparisons were made at (intervals ``1 - alpha``)."""
    gmw_rows = _gmw_rows(depths, alpha)
    bound_rows = _bound_rows(layers)
    top_larger = [{"layer": layer["index"], "name": layer["name"],
                   "correct": layer["top_bound"]["correct"]["mean"],
                   "correct_spread": layer["top_bound"]["correct"]["spread"],
                   "incorrect": layer["top_bound"]["incorrect"]["mean"],
                   "incorrect_spread": layer["top_bound"]["incorrect"]["spread"],
                   **_stated(layer["top_bound_comparison"]), "verdict": layer["top_bound_verdict"],
                   "statement": statement(layer["top_bound_verdict"], layer["top_bound_comparison"], 1 - alpha),
                   "correct_larger": layer["top_bound_verdict"] == "correct larger"}
                  for layer in layers if layer["top_bound"] is not None]
    return {
        "gmw_by_layer": gmw_rows,
        "gmw_correct_larger_all_layers": bool(gmw_rows) and all(r["verdict"] == "correct larger" for r in gmw_rows),
        "gmw_grows_with_depth": {"correct": _grows(depths, "correct"), "incorrect": _grows(depths, "incorrect")},
        "relu_bounds": bound_rows,
        "top_bound_correct_larger": top_larger,
    }
