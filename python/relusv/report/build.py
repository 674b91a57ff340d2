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

from . import analysis, figures, html
from .data import LabelledData
from .findings import findings
from .model import Network
from .pruning import harmonic_prune_one_shot
from .retrain import harmonic_prune_retrained
from .settings import ReportSettings

SCHEMA = Path(__file__).with_name("schema.json")
SCHEMA_VERSION = 1


def compute(network: Network, data: LabelledData, settings: ReportSettings, model_source: str,
            show_progress: Optional[bool] = None, train: Optional[LabelledData] = None) -> tuple:
    """``(report, split)``: the report as a JSON-ready dict (without ``files``) and the group split.

    With ``train`` (training data) and torch installed, harmonic pruning is also
    run with retraining (``pruning_retrained``).
    """
    started = time.perf_counter()
    acts = network.activations(data.x)
    predictions = acts[-1].argmax(axis=1)
    split = analysis.split_groups(predictions, data.y, settings)
    depths = analysis.width_by_depth(network, acts, split, settings, show_progress)
    layers = analysis.layer_spectra(network, acts, split, settings, show_progress)
    pruning = harmonic_prune_one_shot(network, data.x, data.y, settings.tolerance, settings.seed, show_progress)
    retrained = None
    if train is not None:
        retrained = harmonic_prune_retrained(network, data.x, data.y, train.x, train.y, settings.tolerance,
                                             settings.seed, show_progress)
    report = {
        "schema_version": SCHEMA_VERSION,
        "relusv_version": relusv.__version__,
        "model": {"source": model_source, "parameters": network.parameters,
                  "layers": [{"shape": list(l.shape), "relu": l.relu, "double": l.factors is not None}
                             for l in network.layers]},
        "data": {"source": data.source, "points": data.points, "dimension": int(data.x.shape[1]),
                 "classes": network.classes, "accuracy": float(np.mean(predictions == data.y)),
                 "correct": int(split.correct.size), "incorrect": int(split.incorrect.size),
                 "group_size": split.size},
        "settings": settings.to_dict(),
        "depths": depths,
        "layers": layers,
        "pruning": pruning,
        "pruning_retrained": retrained,
        "findings": findings(depths, layers),
    }
    report["elapsed_seconds"] = time.perf_counter() - started
    return report, split


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
        rows.append([layer["index"], layer["name"], layer["shape"][0], layer["shape"][1], layer["relu"],
                     layer["rank"], layer["parameters"], layer["singular_values"][0], layer["singular_values"][-1],
                     *(b[g]["bound"][0] if b[g] is not None and b[g]["ks"][0] == 0 else "" for g in analysis.CURVES),
                     *pm(d, "gmw", "correct"), *pm(d, "gmw", "incorrect"),
                     *pm(d, "effective_dimension", "correct"), *pm(d, "effective_dimension", "incorrect")])
    _write_csv(out / "layers.csv",
               ["layer", "name", "out", "in", "relu", "rank", "parameters", "sigma_0", "sigma_min",
                "relu_bound_0_correct", "relu_bound_0_incorrect", "relu_bound_0_unit_sphere", "gmw_correct_mean",
                "gmw_correct_spread", "gmw_incorrect_mean", "gmw_incorrect_spread", "effdim_correct_mean", "effdim_correct_spread",
                "effdim_incorrect_mean", "effdim_incorrect_spread"], rows)
    names.append("layers.csv")

    rows = []
    for layer in report["layers"]:
        s = layer["singular_values"]
        for k, sigma in enumerate(s):
            rows.append([layer["index"], "linear", k, sigma, "", "", ""])
        for group, curve in layer["relu_bounds"].items():
            if curve is not None:
                for k, sig, t, bound in zip(curve["ks"], curve["sigma"], curve["truncation_bound"], curve["bound"]):
                    rows.append([layer["index"], group, k, sig, t, bound, curve["radius"]])
    _write_csv(out / "spectra.csv", ["layer", "set", "k", "sigma", "truncation_bound", "relu_bound", "radius"], rows)
    names.append("spectra.csv")

    rows = []
    for d in report["depths"]:
        if d["gmw"] is None:
            continue
        for group in analysis.GROUPS:
            for r, (w, e) in enumerate(zip(d["gmw"][group]["values"], d["effective_dimension"][group]["values"])):
                rows.append([d["depth"], d["name"], group, r, w, e])
    _write_csv(out / "gmw.csv", ["depth", "name", "group", "repeat", "gmw", "effective_dimension"], rows)
    names.append("gmw.csv")

    for key, name in (("pruning", "pruning.csv"), ("pruning_retrained", "pruning_retrained.csv")):
        p = report[key]
        if p is None:
            continue
        rows = [[h["iteration"], "" if h["layer"] is None else h["layer"], *h["ranks"], h["parameters"],
                 h["selection_accuracy"], h["evaluation_accuracy"], h.get("retrained", False)] for h in p["history"]]
        _write_csv(out / name, ["iteration", "pruned_layer", *(f"rank_layer_{i}" for i in p["layers"]),
                                "parameters", "selection_accuracy", "evaluation_accuracy", "retrained"], rows)
        names.append(name)
    return names


def write(report: dict, split: analysis.GroupSplit, out: Path) -> dict:
    """Write every file of the report to ``out`` (created if needed); returns the ``files`` entry."""
    out.mkdir(parents=True, exist_ok=True)
    figs = {"spectra": figures.spectra_figure(report["layers"], out / "spectra.png").name}
    g = figures.gmw_figure(report["depths"], out / "gmw.png")
    figs["gmw"] = g.name if g else None
    for key in ("pruning", "pruning_retrained"):
        figs[key] = figures.pruning_figure(report[key], out / f"{key}.png").name if report[key] else None
    subsets = {f"{group}_{r}": s[group] for r, s in enumerate(split.subsets) for group in analysis.GROUPS}
    np.savez(out / "subsets.npz", correct=split.correct, incorrect=split.incorrect, **subsets)
    files = {"html": "index.html", "json": "report.json", "schema": "schema.json", "subsets": "subsets.npz",
             "figures": figs, "csv": []}
    report["files"] = files
    files["csv"] = write_tables(report, out)
    shutil.copyfile(SCHEMA, out / "schema.json")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "index.html").write_text(html.render(report))
    return files
