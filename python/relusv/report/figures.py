"""The report's PNG figures (matplotlib, Agg backend: no display needed).

- ``spectra.png``: per layer (titled by its qualified name), the linear singular values ``sigma_k`` of ``W``
  and, for hidden layers, the ReLU singular-value bounds over the correctly
  (solid) and incorrectly (dashed) classified sets up to the set's data rank (a
  square marks where ``s_k = 0`` exactly begins) divided by the set's radius
  ``max ||x||``, so that MATH.md section 2's chain reads ``bound / radius <= sigma_k``,
  and over a sample of the unit sphere (``b = 0``; dotted).
- ``gmw.png``: GMW and effective dimension per depth, mean +- spread, both groups.
- ``pruning.png``: ranks per hidden layer and accuracy along the pruning path.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

COLORS = {"correct": "tab:blue", "incorrect": "tab:red"}


def _subplots(rows: int, cols: int, figsize):
    """A figure from matplotlib's object API: no pyplot state, no GUI backend, nothing to close."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=False)


def spectra_figure(layers: List[dict], path: Path) -> Path:
    n = len(layers)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = _subplots(rows, cols, (5.2 * cols, 3.6 * rows))
    for ax, layer in zip(axes.flat, layers):
        s = np.asarray(layer["singular_values"])
        ax.semilogy(np.arange(s.size), np.maximum(s, 1e-12), color="0.35", lw=1.4, label=r"linear $\sigma_k(W)$")
        for group, style in (("correct", "-"), ("incorrect", "--")):
            curve = layer["relu_bounds"].get(group)
            if curve is None or curve["radius"] <= 0:
                continue
            ks = np.asarray(curve["ks"])
            bound = np.asarray(curve["bound"]) / curve["radius"]
            ax.semilogy(ks, np.maximum(bound, 1e-12), style, color=COLORS[group], lw=1.6, marker=".", ms=4,
                        label=f"ReLU bound / radius, {group}")
            if curve["zero_from"] < curve["rank_limit"]:   # s_k = 0 exactly from here on (MATH.md section 2)
                ax.semilogy([curve["zero_from"]], [max(float(bound[-1]), 1e-12)], "s", color=COLORS[group], ms=6,
                            mfc="none", label=f"s_k = 0 exactly from k = {curve['zero_from']} ({group})")
        sphere = layer["relu_bounds"].get("unit_sphere")
        if sphere is not None:
            ax.semilogy(sphere["ks"], np.maximum(sphere["bound"], 1e-12), ":", color="tab:green", lw=1.8,
                        marker=".", ms=4, label="ReLU bound, sphere sample (b = 0)")
        m, k = layer["shape"]
        ax.set_title(f"{layer['name']} ({layer['kind']}, {layer['activation']}): {m}x{k}, rank {layer['rank']}",
                     fontsize=10)
        ax.set_xlabel("k")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def gmw_figure(depths: List[dict], path: Path) -> Optional[Path]:
    rows = [d for d in depths if d["gmw"] is not None]
    if not rows:
        return None
    fig, grid = _subplots(1, 2, (10, 3.8))
    axes = grid[0]
    x = np.arange(len(rows))
    for ax, key, title in ((axes[0], "gmw", "Gaussian mean width"),
                           (axes[1], "effective_dimension", "effective dimension (w / diam)$^2$")):
        for offset, group in ((-0.06, "correct"), (0.06, "incorrect")):
            mean = [r[key][group]["mean"] for r in rows]
            spread = [r[key][group]["spread"] for r in rows]
            ax.errorbar(x + offset, mean, yerr=spread, color=COLORS[group], marker="o", ms=4, capsize=3,
                        ls="-" if group == "correct" else "--", label=group)
        ax.set_xticks(x)
        ax.set_xticklabels([r["name"].replace(" (", "\n(") for r in rows], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def pruning_figure(pruning: dict, path: Path) -> Path:
    history = pruning["history"]
    it = [h["iteration"] for h in history]
    fig, grid = _subplots(1, 2, (10, 3.8))
    axes = grid[0]
    ranks = np.array([h["ranks"] for h in history])
    for j, name in enumerate(pruning["names"]):
        axes[0].plot(it, ranks[:, j], lw=1.5, label=name)
    axes[0].set_xlabel("pruning iteration")
    axes[0].set_ylabel("rank")
    axes[0].set_title("ranks of the hidden layers", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[0].grid(True, alpha=0.25)
    axes[1].plot(it, [h["selection_accuracy"] for h in history], color="0.5", lw=1.2, label="selection half")
    axes[1].plot(it, [h["evaluation_accuracy"] for h in history], color="tab:green", lw=1.6, label="evaluation half")
    chosen = pruning["chosen"]["iteration"]
    axes[1].axvline(chosen, color="k", ls=":", lw=1, label=f"chosen (tolerance {100 * pruning['tolerance']:g} pt)")
    axes[1].set_xlabel("pruning iteration")
    axes[1].set_ylabel("accuracy")
    if pruning["retrained"]:
        marks = [(h["iteration"], h["selection_accuracy"]) for h in history if h.get("retrained")]
        if marks:
            axes[1].plot(*zip(*marks), "o", color="0.4", ms=3, label="retrained")
    axes[1].set_title("accuracy along the pruning path (" + ("with" if pruning["retrained"] else "no")
                      + " retraining)", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[1].grid(True, alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
