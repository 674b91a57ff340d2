"""relusv.plot: figures from monitor and pruning histories, saved as PNG."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from relusv import plot  # noqa: E402
from relusv.errors import InvalidInputError  # noqa: E402
from relusv.torch import History, Monitor, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402


@pytest.fixture(scope="module")
def histories():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(900, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] * x[:, 2] > 0.3).long()
    monitor = Monitor(model, x[600:], y[600:], samples=20, repeats=2, every_epochs=1, relu_bounds=True,
                      relu_ks=(0, 1, 2), relu_options={"max_steps": 20})
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(3):
        for _ in range(10):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[:600]), y[:600]).backward()
            opt.step()
        monitor.epoch_end()
    pruned = harmonic_prune(model, x[600:], y[600:], max_iterations=6, tolerance=1.0,
                            retrain=lambda m: None, progress=False)
    torch.set_num_threads(old)
    return monitor, pruned


def check_png(path, min_width=600):
    image = imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width and image.shape[0] >= 250
    assert image[..., :3].std() > 0.05     # not a blank canvas


def test_spectra_figure(histories, tmp_path):
    monitor, _ = histories
    fig = plot.spectra(monitor, path=tmp_path / "spectra.png")
    check_png(tmp_path / "spectra.png")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["layer 0", "layer 2"]
    for ax, count in zip(axes, (8, 10)):   # min(out, in) singular values per layer
        styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
        assert styles["ReLU bound, correct"] == "-" and styles["ReLU bound, incorrect"] == "--"
        sigma = next(line for line in ax.get_lines() if line.get_label().startswith("linear"))
        assert len(sigma.get_xdata()) == count


def test_gmw_figure_from_a_csv_round_trip(histories, tmp_path):
    monitor, _ = histories
    back = History.from_csv(monitor.history.to_csv(tmp_path / "h.csv"))
    fig = plot.gmw(back, path=tmp_path / "gmw.png")
    check_png(tmp_path / "gmw.png")
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["correct"].get_xdata()) == [1, 2, 3]
    assert lines["incorrect"].get_linestyle() == "--"
    plot.gmw(monitor, site="input", x="measurement")


def test_gmw_figure_puts_the_measurements_on_the_axis_they_span():
    """Records of one epoch measured at several steps (``every_steps``): the default axis is the step, so the
    measurements do not all sit at one abscissa; an unknown axis is refused."""
    records = [{"quantity": "gmw", "site": "output", "layer": "0", "group": g, "value": 1.0 + s / 10,
                "spread": 0.0, "epoch": 0, "step": s, "measurement": i, "group_size": 10}
               for i, s in enumerate((5, 10, 15)) for g in ("correct", "incorrect")]
    fig = plot.gmw(records)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step" and sorted(set(ax.lines[0].get_xdata())) == [5, 10, 15]
    by_epoch = [{**r, "epoch": r["measurement"]} for r in records]
    assert plot.gmw(by_epoch).axes[0].get_xlabel() == "epoch"
    assert plot.gmw([{**r, "step": 0} for r in records]).axes[0].get_xlabel() == "measurement"
    with pytest.raises(InvalidInputError, match="x must be one of"):
        plot.gmw(records, x="time")


def test_pruning_figure(histories, tmp_path):
    _, pruned = histories
    fig = plot.pruning(pruned, path=tmp_path / "pruning.png")
    check_png(tmp_path / "pruning.png")
    ranks_ax = fig.axes[0]
    assert [line.get_label() for line in ranks_ax.get_lines()] == ["layer 0", "layer 2"]
    assert len(ranks_ax.get_lines()[0].get_xdata()) == len(pruned.history)


def test_empty_or_unsuitable_histories_raise_clear_errors(histories):
    monitor, _ = histories
    with pytest.raises(ValueError, match="empty"):
        plot.spectra([])
    with pytest.raises(ValueError, match="no Gaussian mean widths"):
        plot.gmw(monitor, site="elsewhere")
    with pytest.raises(ValueError, match="empty"):
        plot.pruning([])


def test_relu_spectrum_figure_draws_the_chain_of_the_result(tmp_path):
    import numpy as np
    import relusv

    rng = np.random.default_rng(0)
    W, b, X = rng.normal(size=(12, 8)), rng.normal(size=12), rng.normal(size=(300, 8))
    r = relusv.relu_singular_values(W, b, X, ks=[4, 0, 2], max_steps=20, progress=False)
    fig = plot.relu_spectrum(r, path=tmp_path / "spectrum.png")
    check_png(tmp_path / "spectrum.png", min_width=500)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    order = np.argsort(r.ks)
    bound = lines["certified bound of $s_k$"]
    assert list(bound.get_xdata()) == [0, 2, 4]
    np.testing.assert_allclose(bound.get_ydata(), r.bound[order])
    np.testing.assert_allclose(lines["$t_k$ (truncated SVD)"].get_ydata(), r.truncation_bound[order])
    linear = next(line for label, line in lines.items() if label.startswith("$\\sigma_k"))
    np.testing.assert_allclose(linear.get_ydata(), np.linalg.svd(W, compute_uv=False)[[0, 2, 4]]
                               * np.linalg.norm(X, axis=1).max(), rtol=1e-10)
    with pytest.raises(TypeError, match="relu_singular_values"):
        plot.relu_spectrum({"bound": [1.0]})


def test_analysis_figure_plots_both_groups_of_the_table(tmp_path):
    from relusv.datasets import load_digits_mlp
    from relusv.torch import analyze

    model, x, y = load_digits_mlp()
    table = analyze(model, x[:600], y[:600], relu_bounds=False, repeats=2, progress=False)
    fig = plot.analysis(table, path=tmp_path / "analysis.png")
    check_png(tmp_path / "analysis.png")
    gmw_ax = fig.axes[0]
    assert [t.get_text() for t in gmw_ax.get_xticklabels()] == [str(n) for n in table["layer"]]
    widths = [c for c in gmw_ax.containers]          # one errorbar container per group
    assert len(widths) == 2
    np.testing.assert_allclose(np.asarray(widths[0].lines[0].get_ydata(), float), table["gmw_correct"])
    np.testing.assert_allclose(np.asarray(widths[1].lines[0].get_ydata(), float), table["gmw_incorrect"])
    with pytest.raises(TypeError, match="analyze"):
        plot.analysis([1, 2, 3])
    import relusv
    with pytest.raises(relusv.InvalidInputError, match="no widths"):
        plot.analysis(table.assign(gmw_incorrect=float("nan")))
    # Many layers (a ResNet's 29 rows): the panels stacked, as wide as the names need; widths spanning more
    # than three decades on a log axis (or as asked).
    many = pd.concat([table] * 10, ignore_index=True)
    many["layer"] = [f"block{i}.conv" for i in range(len(many))]
    many["gmw_correct"] = np.geomspace(1e-6, 10.0, len(many))
    fig = plot.analysis(many)
    top, bottom = fig.axes[0], fig.axes[1]
    assert top.get_position().y0 > bottom.get_position().y1 and fig.get_figwidth() >= 0.22 * len(many)
    assert top.get_yscale() == "log" and plot.analysis(many, log=False).axes[0].get_yscale() == "linear"
    assert plot.analysis(table).axes[0].get_yscale() == "linear"


def test_figures_render_as_png_in_ipython_and_leave_no_pyplot_state(histories):
    pytest.importorskip("IPython")
    import matplotlib
    from IPython.core.interactiveshell import InteractiveShell

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monitor, pruned = histories
    shell = InteractiveShell.instance()
    for fig in (plot.gmw(monitor), plot.spectra(monitor), plot.pruning(pruned)):
        data, _ = shell.display_formatter.format(fig)
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []
