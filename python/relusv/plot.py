"""Figures of monitor and pruning histories (the kinds of Figures 2-5 of the paper).

Needs matplotlib (``pip install relusv[plot]``), imported only when a function
is called. Figures are built with matplotlib's object API, never through
pyplot: no window opens, no GUI backend is needed, and no pyplot state is left
behind, so scripts save figures cleanly and nothing is shown twice. The
figures returned render themselves as PNG (``_repr_png_``), so in Jupyter a
figure that ends a cell displays without ``%matplotlib inline``. With
``path`` the figure is also saved as PNG.

- ``gmw``, ``spectra``: the records of ``relusv.torch.Monitor.history`` (a
  ``Monitor`` is accepted too), also after a round trip through CSV or JSON;
- ``pruning``: ``relusv.torch.harmonic_prune(...)`` or its history;
- ``relu_spectrum``: a ``relusv.ReluSpectrum`` (or the torch layer version);
- ``analysis``: the table of ``relusv.torch.analyze``.

Conventions: correctly classified points are drawn solid, incorrectly
classified ones dashed; linear singular values are drawn in grey.
"""
from __future__ import annotations

import functools
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from .errors import InvalidInputError, InvalidTypeError

__all__ = ["gmw", "spectra", "pruning", "relu_spectrum", "analysis"]

PathLike = Union[str, Path]
_STYLE = {"correct": "-", "incorrect": "--"}
_LINEAR_COLOUR = "0.45"


@functools.cache
def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("relusv.plot needs matplotlib: pip install 'relusv[plot]'") from error

    class DisplayedFigure(Figure):
        """A matplotlib ``Figure`` that IPython displays as PNG."""

        def _repr_png_(self) -> bytes:
            buffer = io.BytesIO()
            self.savefig(buffer, format="png", dpi=100)
            return buffer.getvalue()

    return DisplayedFigure


def _figure(rows: int, cols: int, width: float = 4.2, height: float = 3.3):
    fig = _figure_class()(figsize=(width * cols, height * rows), layout="constrained")
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

    Grey: ``sigma_k(W)``; coloured: the ReLU bounds over the correctly (solid)
    and incorrectly (dashed) classified points of one measurement (recorded by
    ``Monitor(relu_bounds=True)``).

    Parameters
    ----------
    history : Monitor, History or list of dict
        The monitor or its records (also read back from CSV or JSON).
    measurement : int, optional
        Which measurement (default the last one).
    path : str or pathlib.Path, optional
        Also save the figure there as PNG.
    log : bool
        Logarithmic vertical axis.

    Returns
    -------
    matplotlib.figure.Figure
        Displays itself in Jupyter.

    Raises
    ------
    InvalidInputError
        For an empty history or a measurement without singular values.

    Examples
    --------
    >>> monitor = relusv.torch.Monitor(model, x, y, every_epochs=1)   # doctest: +SKIP
    >>> relusv.plot.spectra(monitor, path="spectra.png")              # doctest: +SKIP
    """
    records = _records(history)
    if not records:
        raise InvalidInputError("the history is empty: nothing to plot")
    if measurement is None:
        measurement = max(int(r["measurement"]) for r in records)
    records = [r for r in records if int(r["measurement"]) == measurement
               and r["quantity"] in ("singular_value", "relu_bound")]
    layers = _layers(records)
    if not layers:
        raise InvalidInputError(f"measurement {measurement} has no singular values or ReLU bounds "
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


def gmw(history: Any, site: str = "output", x: Optional[str] = None, path: Optional[PathLike] = None):
    """Gaussian mean width per layer over training, correct (solid) vs incorrect (dashed).

    One panel per layer; the band is mean +- spread over the subsamples.

    Parameters
    ----------
    history : Monitor, History or list of dict
        The monitor or its records (also read back from CSV or JSON).
    site : {"output", "input"}
        The widths after the activation (default) or at the layer's input.
    x : {"epoch", "step", "measurement"}, optional
        The record field on the horizontal axis. Default: ``"epoch"`` where the
        measurements span several epochs, else ``"step"`` where they span
        several steps (a monitor on ``every_steps``), else ``"measurement"``.
    path : str or pathlib.Path, optional
        Also save the figure there as PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Displays itself in Jupyter.

    Raises
    ------
    InvalidInputError
        When the history has no widths at ``site``, or ``x`` is not one of the fields above.

    Examples
    --------
    >>> relusv.plot.gmw(monitor)                          # doctest: +SKIP
    >>> relusv.plot.gmw(History.from_csv("monitor.csv"), x="step")   # doctest: +SKIP
    """
    records = [r for r in _records(history) if r.get("quantity") == "gmw" and r.get("site") == site]
    layers = _layers(records)
    if not layers:
        raise InvalidInputError(f"the history has no Gaussian mean widths at site {site!r}")
    x = _time_axis(records) if x is None else x
    if x not in _TIME_AXES:
        raise InvalidInputError(f"x must be one of {', '.join(_TIME_AXES)}, got {x!r}")
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


_TIME_AXES = ("epoch", "step", "measurement")


def _time_axis(records: Sequence[dict]) -> str:
    """The first of ``_TIME_AXES`` along which the records' measurements differ (``"measurement"`` if none)."""
    for field in _TIME_AXES[:-1]:
        if len({r.get(field) for r in records if _present(r.get(field))}) > 1:
            return field
    return _TIME_AXES[-1]


def pruning(history: Any, path: Optional[PathLike] = None, layers: Optional[Sequence[str]] = None):
    """Harmonic pruning: ranks per layer, and accuracy with the parameter count, per iteration.

    Iterations with retraining are marked with filled circles on the accuracy
    curve; the accuracy before retraining is drawn thin.

    Parameters
    ----------
    history : PruneResult or list of dict
        The result of ``relusv.torch.harmonic_prune`` or its history.
    path : str or pathlib.Path, optional
        Also save the figure there as PNG.
    layers : sequence of str, optional
        Names of the pruned layers (default: the result's own).

    Returns
    -------
    matplotlib.figure.Figure
        Displays itself in Jupyter.

    Raises
    ------
    InvalidInputError
        For an empty history.

    Examples
    --------
    >>> result = relusv.torch.harmonic_prune(model, x_val, y_val)   # doctest: +SKIP
    >>> relusv.plot.pruning(result)                                # doctest: +SKIP
    """
    records = [r for r in _records(history) if r.get("accepted", True) in (True, "True")]
    if not records:
        raise InvalidInputError("the pruning history is empty: nothing to plot")
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


def relu_spectrum(spectrum: Any, path: Optional[PathLike] = None, log: bool = True):
    """The certified ReLU bound curve of one layer next to its linear chain.

    Draws, over ``k``, ``bound_k`` (relusv's certified upper bound of the ReLU
    singular value ``s_k``), the truncated-SVD error ``t_k`` and
    ``sigma_k max ||x||``; MATH.md section 2's chain
    ``s_k <= bound_k <= t_k <= sigma_k max ||x||`` reads top to bottom.

    Parameters
    ----------
    spectrum : relusv.ReluSpectrum or relusv.torch.LayerReluSpectrum
        The result of ``relusv.relu_singular_values`` (or of the torch version).
    path : str or pathlib.Path, optional
        Also save the figure there as PNG.
    log : bool
        Logarithmic vertical axis (default), as the curves span decades.

    Returns
    -------
    matplotlib.figure.Figure
        Displays itself in Jupyter.

    Raises
    ------
    InvalidTypeError
        When ``spectrum`` is not a ReLU spectrum.

    Examples
    --------
    >>> import numpy as np, relusv, relusv.plot
    >>> rng = np.random.default_rng(0)
    >>> r = relusv.relu_singular_values(rng.normal(size=(20, 10)), None, rng.normal(size=(200, 10)))
    >>> fig = relusv.plot.relu_spectrum(r)
    """
    spectrum = getattr(spectrum, "spectrum", spectrum)  # LayerReluSpectrum wraps a ReluSpectrum
    if not all(hasattr(spectrum, a) for a in ("ks", "bound", "truncation_bound", "sigma", "data_max_norm")):
        raise InvalidTypeError(f"relu_spectrum needs the result of relusv.relu_singular_values, "
                               f"got {type(spectrum).__name__}")
    order = sorted(range(len(spectrum.ks)), key=lambda i: int(spectrum.ks[i]))
    ks = [int(spectrum.ks[i]) for i in order]
    fig, axes = _figure(1, 1, width=5.6, height=3.8)
    ax = axes[0, 0]
    chain = [(spectrum.sigma, float(spectrum.data_max_norm), _LINEAR_COLOUR, "-",
              "$\\sigma_k(W)\\,\\max\\|x\\|$"),
             (spectrum.truncation_bound, 1.0, "C1", "--", "$t_k$ (truncated SVD)"),
             (spectrum.bound, 1.0, "C3", "-", "certified bound of $s_k$")]
    for values, scale, colour, style, label in chain:
        ax.plot(ks, [float(values[i]) * scale for i in order], style, color=colour, marker="o", ms=3, lw=1.8,
                label=label)
    if log and all(float(v) > 0 for v in spectrum.bound):
        ax.set_yscale("log")
    _integer_axis(ax.xaxis)
    ax.set_xlabel("k")
    ax.set_ylabel("error over the points")
    ax.set_title(f"ReLU singular values over {spectrum.points} points")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, axes, path, 1)


_ANALYSIS_PANELS = (("gmw", "Gaussian mean width"), ("effdim", "effective dimension $(w / diam)^2$"))


def analysis(table: Any, path: Optional[PathLike] = None, log: Optional[bool] = None):
    """Widths of correctly vs incorrectly classified points through the layers of a model.

    Two panels over the layers of ``relusv.torch.analyze``'s table (in
    execution order): the Gaussian mean width and the effective dimension of
    both groups at each layer's output, mean with its spread over the
    equal-size subsamples as error bars; correct solid, incorrect dashed.
    Side by side for up to 12 layers; above one another, as wide as the
    layers' names need, for more (a ResNet, a MobileNet).

    Parameters
    ----------
    table : pandas.DataFrame
        The result of ``relusv.torch.analyze``.
    path : str or pathlib.Path, optional
        Also save the figure there as PNG.
    log : bool, optional
        Logarithmic vertical axes; default: where a panel's positive values span
        more than three decades.

    Returns
    -------
    matplotlib.figure.Figure
        Displays itself in Jupyter.

    Raises
    ------
    InvalidTypeError
        When ``table`` is not an ``analyze`` table.
    InvalidInputError
        When it has no widths (every point classified correctly, or none).

    Examples
    --------
    >>> import relusv.torch as rt, relusv.plot                       # doctest: +SKIP
    >>> relusv.plot.analysis(rt.analyze(model, x, y))               # doctest: +SKIP
    """
    columns = getattr(table, "columns", ())
    if "gmw_correct" not in columns or "layer" not in columns:
        raise InvalidTypeError(f"analysis needs the table of relusv.torch.analyze, got {type(table).__name__}")
    rows = table.to_dict("records")
    if not any(_present(r["gmw_correct"]) and _present(r["gmw_incorrect"]) for r in rows):
        reason = table.attrs.get("comparison", "") if hasattr(table, "attrs") else ""
        raise InvalidInputError(f"the table has no widths of both groups to plot{': ' + reason if reason else ''}")
    names = [str(r["layer"]) for r in rows]
    many = len(rows) > 12
    fig, axes = _figure(2, 1, width=min(40.0, max(9.2, 0.22 * len(rows))), height=3.6) if many else \
        _figure(1, 2, width=4.6, height=3.4)
    for ax, (quantity, label) in zip(axes.flat, _ANALYSIS_PANELS):
        positive = []
        for colour, group in zip(("C0", "C3"), ("correct", "incorrect")):
            values = [r.get(f"{quantity}_{group}") for r in rows]
            spread = [r.get(f"{quantity}_{group}_spread") for r in rows]
            positive += [v for v in values if _present(v) and v > 0]
            ax.errorbar(range(len(rows)), [v if _present(v) else math.nan for v in values],
                        yerr=[s if _present(s) else 0.0 for s in spread], fmt=_STYLE[group], color=colour,
                        marker="o", ms=4 if not many else 3, lw=1.8 if not many else 1.2, capsize=3, label=group)
        if log or (log is None and positive and max(positive) > 1e3 * min(positive)):
            ax.set_yscale("log")
        ax.set_xticks(range(len(rows)), names, rotation=90 if many else (30 if max(map(len, names)) > 6 else 0),
                      fontsize="small" if many else None)
        ax.set_xlabel("layer")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    attrs = getattr(table, "attrs", {})
    probe = attrs.get("probe", attrs)
    accuracy = probe.get("accuracy") if isinstance(probe, dict) else None
    fig.suptitle("Correctly vs incorrectly classified points" +
                 (f" (accuracy {accuracy:.1%})" if isinstance(accuracy, float) else ""))
    return _finish(fig, axes, path, 2)
