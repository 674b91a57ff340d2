"""relusv.plot: figures from monitor and pruning histories, saved as PNG."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")
from matplotlib.image import imread  # noqa: E402
from relusv import plot  # noqa: E402
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
    monitor = Monitor(model, x[600:], y[600:], samples=20, subsets=2, every_epochs=1, relu_bounds=True,
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
