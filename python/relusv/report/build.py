"""Assemble a report: compute every number, then write the directory.

Files written to ``out``: ``index.html``, ``report.json`` (validated by
``schema.json``, copied alongside), ``layers.csv``, ``spectra.csv``,
``gmw.csv``, ``pruning.csv`` (and ``pruning_retrained.csv``), ``subsets.npz`` (the indices of the compared
sets, for reproducing any number), and the PNG figures.
"""
from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import numpy as np

import relusv

from ..analysis.compare import DEFAULT_PERMUTATIONS
from . import analysis, figures, html
from .atomic import pause
from .data import LabelledData
from .findings import findings
from .pruning import harmonic_prune_one_shot
from .retrain import harmonic_prune_retrained
from .settings import ReportSettings
from .source import ModelSource
from .torch_pruning import harmonic_prune_torch

SCHEMA = Path(__file__).with_name("schema.json")
SCHEMA_VERSION = 1


def compute(model: ModelSource, data: LabelledData, settings: ReportSettings,
            show_progress: Optional[bool] = None, train: Optional[LabelledData] = None) -> tuple:
    """``(report, attrs)``: the report as a JSON-ready dict (without ``files``) and the table's ``attrs``.

    Every per-layer number comes from the table (``relusv.torch.analyze``).
    One-shot harmonic pruning runs on models that are chains of linear layers
    (``model.network``), on other torch models through ``relusv.torch.harmonic_prune``; with ``train``
    (training data) also pruning with retraining (``pruning_retrained``).
    """
    started = time.perf_counter()
    rows, attrs = analysis.run(model.module, model.network, data, settings, show_progress)
    layers = analysis.layers_section(rows, attrs)
    depths = analysis.depths_section(rows, attrs)
    network = model.network
    chain = network is not None and [l["shape"] for l in layers] == [list(l.shape) for l in network.layers]
    pruning, retrained = None, None
    if chain:
        hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
        names = [layers[i]["name"] for i in hidden]
        ranks = [layers[i]["rank"] for i in hidden]
        pruning = harmonic_prune_one_shot(network, data.x, data.y, settings.tolerance, settings.seed, names, ranks,
                                          show_progress)
        if train is not None:
            retrained = harmonic_prune_retrained(network, data.x, data.y, train.x, train.y, settings.tolerance,
                                                 settings.seed, names, show_progress)
    elif model.module is not None:
        pruning = harmonic_prune_torch(model.module, data.x, data.y, settings.tolerance, settings.seed, layers,
                                       show_progress, trials=settings.pruning_trials)
        if train is not None and pruning is not None:
            retrained = harmonic_prune_torch(model.module, data.x, data.y, settings.tolerance, settings.seed, layers,
                                             show_progress, train=(train.x, train.y), trials=settings.pruning_trials)
    report = {
        "schema_version": SCHEMA_VERSION,
        "relusv_version": relusv.__version__,
        "model": {"source": model.source, "parameters": _parameters(model),
                  "notes": list(model.notes),
                  "layers": [{key: layer[key] for key in ("name", "kind", "module", "activation", "shape", "relu",
                                                          "double", "folded", "notes")} for layer in layers],
                  "discovery": {"method": attrs["discovery"]["method"], "skipped": attrs["discovery"]["skipped"],
                                "trace_error": attrs["discovery"]["trace_error"]},
                  "pruning": ("one-shot harmonic pruning of the chain of linear layers" if chain else
                              "one-shot harmonic pruning with relusv.torch.harmonic_prune (Linear and Conv2d "
                              "layers before a ReLU)" + ("; also with retraining" if retrained is not None else "")
                              if pruning is not None else
                              "not run: no layer to prune")},
        "data": {"source": data.source, "points": data.points, "dimension": int(np.prod(data.x.shape[1:])),
                 "classes": _classes(model, data),
                 "accuracy": attrs["accuracy"], "correct": attrs["correct"], "incorrect": attrs["incorrect"],
                 "group_size": attrs["group_size"], "comparison": attrs["comparison"]},
        "settings": {**settings.to_dict(), "permutations": int(attrs["design"].get("permutations") or
                                                               DEFAULT_PERMUTATIONS)},
        "depths": depths,
        "layers": layers,
        "pruning": pruning,
        "pruning_retrained": retrained,
        "findings": findings(depths, layers, settings.alpha),
    }
    report["elapsed_seconds"] = time.perf_counter() - started
    return report, attrs


def _parameters(model: ModelSource) -> int:
    if model.module is None:
        return model.network.parameters
    return int(sum(p.numel() for p in model.module.parameters()))


def _classes(model: ModelSource, data: LabelledData) -> int:
    if model.network is not None:
        return model.network.classes
    from .data import model_outputs

    return model_outputs(model.module, data.x, data.source)


def _write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_tables(report: dict, out: Path) -> list:
    names = []
    depth_of = {d["depth"]: d for d in report["depths"]}

    def pm(d, key, group):
        if d is None or d[key] is None:
            return ["", ""]
        return [d[key][group]["mean"], d[key][group]["spread"]]

    rows = []
    for layer in report["layers"]:
        d = depth_of.get(layer["index"] + 1)
        b = layer["relu_bounds"]
        top = layer["top_bound"]
        rows.append([layer["name"], layer["kind"], layer["activation"], layer["folded"], layer["shape"][0],
                     layer["shape"][1], layer["relu"], layer["rank"], layer["parameters"], layer["singular_values"][0],
                     layer["singular_values"][-1], layer["stable_rank"],
                     "" if layer["operator_norm"] is None else layer["operator_norm"], layer["operator_norm_method"],
                     *(top[g]["mean"] if top else "" for g in analysis.GROUPS),
                     b["unit_sphere"]["bound"][0] if b["unit_sphere"] is not None else "",
                     *pm(d, "gmw", "correct"), *pm(d, "gmw", "incorrect"),
                     *(("",) * 3 if d is None or d["comparison"] is None else
                       (d["comparison"]["effect"], d["comparison"]["effect_low"], d["comparison"]["effect_high"])),
                     *(("",) * 2 if d is None or d["comparison"] is None else
                       (d["comparison"]["p_value"], d["comparison"]["p_adjusted"])),
                     "" if d is None else d["verdict"],
                     *pm(d, "effective_dimension", "correct"), *pm(d, "effective_dimension", "incorrect")])
    _write_csv(out / "layers.csv",
               ["layer", "kind", "activation", "folded", "out", "in", "relu", "rank", "parameters", "sigma_0",
                "sigma_min", "stable_rank", "operator_norm", "operator_norm_method", "s0_correct", "s0_incorrect",
                "s0_unit_sphere", "gmw_correct_mean",
                "gmw_correct_spread", "gmw_incorrect_mean", "gmw_incorrect_spread", "gmw_effect", "gmw_effect_low", "gmw_effect_high",
                "gmw_p_value", "gmw_p_adjusted", "gmw_verdict",
                "effdim_correct_mean", "effdim_correct_spread", "effdim_incorrect_mean", "effdim_incorrect_spread"],
               rows)
    names.append("layers.csv")

    rows = []
    for layer in report["layers"]:
        s = layer["singular_values"]
        for k, sigma in enumerate(s):
            rows.append([layer["name"], "linear", k, sigma, "", "", "", ""])
        for group, curve in layer["relu_bounds"].items():
            if curve is not None:
                for k, sig, t, bound, source in zip(curve["ks"], curve["sigma"], curve["truncation_bound"],
                                                    curve["bound"], curve["source"]):
                    rows.append([layer["name"], group, k, sig, t, bound, curve["radius"], source])
                for k in range(curve["zero_from"], curve["rank_limit"]):
                    rows.append([layer["name"], group, k, s[k], "", 0.0, curve["radius"], "exact zero (k >= rank(X W^T))"])
    _write_csv(out / "spectra.csv", ["layer", "set", "k", "sigma", "truncation_bound", "relu_bound", "radius",
                                     "source"], rows)
    names.append("spectra.csv")

    rows = []
    for d in report["depths"]:
        if d["gmw"] is None:
            continue
        for group in analysis.GROUPS:
            for r, (w, e) in enumerate(zip(d["gmw"][group]["values"], d["effective_dimension"][group]["values"])):
                rows.append([d["depth"], d["name"], d["layer"], group, r, w, e])
    _write_csv(out / "gmw.csv", ["depth", "name", "layer", "group", "repeat", "gmw", "effective_dimension"], rows)
    names.append("gmw.csv")

    for key, name in (("pruning", "pruning.csv"), ("pruning_retrained", "pruning_retrained.csv")):
        p = report[key]
        if p is None:
            continue
        rows = [[h["iteration"], "" if h["layer"] is None else p["names"][p["layers"].index(h["layer"])], *h["ranks"],
                 h["parameters"], h["selection_accuracy"], h["evaluation_accuracy"], h.get("retrained", False)]
                for h in p["history"]]
        _write_csv(out / name, ["iteration", "pruned_layer", *(f"rank {n}" for n in p["names"]),
                                "parameters", "selection_accuracy", "evaluation_accuracy", "retrained"], rows)
        names.append(name)
    return names


def write(report: dict, attrs: dict, out: Path) -> dict:
    """Write every file of the report to ``out`` (created if needed); returns the ``files`` entry.

    Every name written is in ``atomic.REPORT_FILES``. The command writes into a staging folder that then
    replaces the report folder as a whole (``atomic.staged``)."""
    out.mkdir(parents=True, exist_ok=True)
    figs = {"spectra": figures.spectra_figure(report["layers"], out / "spectra.png").name}
    g = figures.gmw_figure(report["depths"], out / "gmw.png")
    figs["gmw"] = g.name if g else None
    for key in ("pruning", "pruning_retrained"):
        figs[key] = figures.pruning_figure(report[key], out / f"{key}.png").name if report[key] else None
    pause("writing")
    correct = np.asarray(attrs["correct_mask"], dtype=bool)
    np.savez(out / "subsets.npz", correct=np.flatnonzero(correct), incorrect=np.flatnonzero(~correct),
             **analysis.subsets(attrs))
    files = {"html": "index.html", "json": "report.json", "schema": "schema.json", "subsets": "subsets.npz",
             "figures": figs, "csv": []}
    report["files"] = files
    files["csv"] = write_tables(report, out)
    shutil.copyfile(SCHEMA, out / "schema.json")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "index.html").write_text(html.render(report))
    return files
