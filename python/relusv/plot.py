"""Figures of monitor and pruning histories (the kinds of Figures 2-5 of the paper).

Needs matplotlib (``pip install relusv[plot]``), imported only when a function
is called. Figures are built with matplotlib's object API (``Figure``), so no
window opens and no GUI backend is needed: on a machine without a display
nothing changes, in a notebook the returned figure displays itself. With
``path`` the figure is also saved as PNG.

Inputs are the records of ``relusv.torch.Monitor.history`` and of
``relusv.torch.harmonic_prune(...).history`` (lists of dicts; a ``Monitor`` or
``PruneResult`` is accepted too), also after a round trip through CSV or JSON.

Conventions: correctly classified points are drawn solid, incorrectly
classified ones dashed; linear singular values are drawn in grey.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

PathLike = Union[str, Path]
_STYLE = {"correct": "-", "incorrect": "--"}
_LINEAR_COLOUR = "0.45"


def _figure(rows: int, cols: int, width: float = 4.2, height: float = 3.3):
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("relusv.plot needs matplotlib: pip install 'relusv[plot]'") from error
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _integer_axis(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _records(source: Any) -> List[Dict[str, Any]]:
    return list(getattr(source, "history", source))


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _layers(records: Sequence[Dict[str, Any]]) -> List[str]:
    seen: Dict[str, None] = {}
    for r in records:
        if _present(r.get("layer")):
            seen.setdefault(str(r["layer"]), None)
    return list(seen)


def _finish(fig, axes, path: Optional[PathLike], used: int):
    for ax in axes.flat[used:]:
        ax.set_visible(False)
    if path is not None:
        fig.savefig(Path(path), dpi=120, format="png")
    return fig


def _grid(count: int, max_cols: int = 3):
    cols = max(1, min(count, max_cols))
    return -(-count // cols), cols


def spectra(history: Any, measurement: Optional[int] = None, path: Optional[PathLike] = None,
            log: bool = False):
    """Linear singular values next to ReLU singular-value bounds, one panel per layer.

    ``measurement`` selects one measurement of the monitor (default the last one).
    Grey: ``sigma_k(W)``; coloured: the ReLU bounds over the correctly (solid)
    and incorrectly (dashed) classified points of that measurement.
    """
    records = _records(history)
    if not records:
        raise ValueError("the history is empty: nothing to plot")
    if measurement is None:
        measurement = max(int(r["measurement"]) for r in records)
    records = [r for r in records if int(r["measurement"]) == measurement
               and r["quantity"] in ("singular_value", "relu_bound")]
    layers = _layers(records)
    if not layers:
        raise ValueError(f"measurement {measurement} has no singular values or ReLU bounds "
                         f"(Monitor(singular_values=True) / relu_bounds=True record them)")
    fig, axes = _figure(*_grid(len(layers)))
    for ax, layer in zip(axes.flat, layers):
        own = [r for r in records if str(r["layer"]) == layer]
        sigma = sorted((int(r["k"]), r["value"]) for r in own if r["quantity"] == "singular_value")
        if sigma:
            ax.plot([k for k, _ in sigma], [v for _, v in sigma], color=_LINEAR_COLOUR, lw=1.5,
                    label="linear $\\sigma_k(W)$")
        for colour, group in zip(("C0", "C3"), ("correct", "incorrect")):
            bound = sorted((int(r["k"]), r["value"]) for r in own
                           if r["quantity"] == "relu_bound" and r["group"] == group)
            if bound:
                ax.plot([k for k, _ in bound], [v for _, v in bound], _STYLE[group], color=colour, marker="o",
                        ms=3, lw=1.8, label=f"ReLU bound, {group}")
        if log:
            ax.set_yscale("log")
        ax.set_title(f"layer {layer}")
        _integer_axis(ax.xaxis)
        ax.set_xlabel("k")
        ax.set_ylabel("singular value / bound")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    epoch = records[0].get("epoch")
    fig.suptitle(f"Spectra per layer (measurement {measurement}, epoch {epoch})")
    return _finish(fig, axes, path, len(layers))


def gmw(history: Any, site: str = "output", x: str = "epoch", path: Optional[PathLike] = None):
    """Gaussian mean width per layer over training, correct (solid) vs incorrect (dashed).

    One panel per layer; the band is mean +- spread over the subsamples. ``site``
    is ``"output"`` (after the ReLU) or ``"input"``; ``x`` is the record field on
    the horizontal axis (``"epoch"``, ``"step"`` or ``"measurement"``).
    """
    records = [r for r in _records(history) if r.get("quantity") == "gmw" and r.get("site") == site]
    layers = _layers(records)
    if not layers:
        raise ValueError(f"the history has no Gaussian mean widths at site {site!r}")
    fig, axes = _figure(*_grid(len(layers)))
    for ax, layer in zip(axes.flat, layers):
        for colour, group in zip(("C0", "C3"), ("correct", "incorrect")):
            points = sorted((r[x], r["value"], r["spread"] if _present(r["spread"]) else 0.0) for r in records
                            if str(r["layer"]) == layer and r["group"] == group and _present(r["value"]))
            if not points:
                continue
            xs, ys, spread = zip(*points)
            ax.plot(xs, ys, _STYLE[group], color=colour, marker="o", ms=3, lw=1.8, label=group)
            ax.fill_between(xs, [a - s for a, s in zip(ys, spread)], [a + s for a, s in zip(ys, spread)],
                            color=colour, alpha=0.15, lw=0)
        ax.set_title(f"layer {layer} ({site})")
        _integer_axis(ax.xaxis)
        ax.set_xlabel(x)
        ax.set_ylabel("Gaussian mean width")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    sizes = sorted({int(r["group_size"]) for r in records if _present(r.get("group_size"))})
    fig.suptitle(f"GMW of equal-size groups ({sizes[0]}-{sizes[-1]} points)" if sizes else "GMW")
    return _finish(fig, axes, path, len(layers))


def pruning(history: Any, path: Optional[PathLike] = None, layers: Optional[Sequence[str]] = None):
    """Harmonic pruning: ranks per layer, and accuracy with the parameter count, per iteration.

    Iterations with retraining are marked with filled circles on the accuracy
    curve; the accuracy before retraining is drawn thin.
    """
    records = [r for r in _records(history) if r.get("accepted", True) in (True, "True")]
    if not records:
        raise ValueError("the pruning history is empty: nothing to plot")
    if layers is None:
        layers = list(getattr(history, "layers", [])) or [f"layer {i}" for i in range(len(records[0]["ranks"]))]
    fig, axes = _figure(1, 2, width=5.0, height=3.6)
    ranks_ax, acc_ax = axes[0]
    iterations = [int(r["iteration"]) for r in records]
    for i, name in enumerate(layers):
        ranks_ax.step(iterations, [r["ranks"][i] for r in records], where="post", lw=1.8, label=f"layer {name}")
    for axis in (ranks_ax.xaxis, ranks_ax.yaxis, acc_ax.xaxis):
        _integer_axis(axis)
    ranks_ax.set_xlabel("iteration")
    ranks_ax.set_ylabel("rank")
    ranks_ax.set_title("Ranks per layer")
    ranks_ax.grid(alpha=0.3)
    ranks_ax.legend(fontsize="small")
    acc_ax.plot(iterations, [r["accuracy"] for r in records], color="C0", lw=1.8, label="accuracy")
    acc_ax.plot(iterations, [r["accuracy_before_retraining"] for r in records], color="C0", lw=0.8, alpha=0.6,
                label="before retraining")
    retrained = [(it, r["accuracy"]) for it, r in zip(iterations, records) if r["retrained"] in (True, "True")]
    if retrained:
        acc_ax.plot(*zip(*retrained), "o", color="C0", ms=4, label="retrained")
    acc_ax.set_xlabel("iteration")
    acc_ax.set_ylabel("held-out accuracy")
    acc_ax.set_title("Accuracy and parameters")
    acc_ax.grid(alpha=0.3)
    params_ax = acc_ax.twinx()
    params_ax.plot(iterations, [r["parameters"] for r in records], color=_LINEAR_COLOUR, ls=":", lw=1.5,
                   label="parameters")
    params_ax.set_ylabel("parameters")
    lines = acc_ax.get_legend_handles_labels()
    more = params_ax.get_legend_handles_labels()
    acc_ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small", loc="lower left")
    return _finish(fig, axes, path, 2)
