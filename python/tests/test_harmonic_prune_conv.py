"""harmonic_prune on a CNN mixing Conv2d, DoubleConv2d, Linear and DoubleLinear (MATH.md sections 8-9).

Oracles: accuracies recomputed by hand with the kernel matrix (or weight)
truncated by NumPy's SVD and put back into a copy of the network; parameter
counts from the layer shapes; ranks from NumPy's matrix_rank of the factors.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from conftest import trained  # noqa: E402
from relusv.torch import DoubleConv2d, DoubleLinear, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYERS = ["0", "2", "5"]


def make_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 6, 6, generator=g)
    y = (x[:, 0, :3].mean((1, 2)) > x[:, 1, 3:].mean((1, 2))).long() + (x[:, 0, :, :2].mean((1, 2)) > 0.2).long()
    return x, y


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(),
                          DoubleConv2d(6, 5, 3, rank=4, stride=2, seed=0), nn.ReLU(), nn.Flatten(),
                          nn.Linear(5 * 2 * 2, 7), nn.ReLU(), DoubleLinear(7, 3, rank=3, seed=1))
    x, y = make_data(800, 0)
    return trained(model, x, y, 80, lr=1e-2), make_data(300, 1)


def truncated_into(model: nn.Module, name: str, rank: int) -> nn.Module:
    """A copy of ``model`` whose layer ``name`` is a plain Conv2d / Linear with its W truncated to ``rank``."""
    trial = copy.deepcopy(model)
    layer = trial.get_submodule(name)
    if isinstance(layer, DoubleConv2d):
        layer = layer.to_conv()
    elif isinstance(layer, DoubleLinear):
        layer = layer.to_linear()
    w = layer.weight.detach().double().numpy()
    mat = w.reshape(w.shape[0], -1)
    u, s, vt = np.linalg.svd(mat, full_matrices=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(((u[:, :rank] * s[:rank]) @ vt[:rank]).reshape(w.shape)))
    trial[int(name)] = layer
    return trial


def hand_accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def test_one_rank_per_iteration_on_the_layer_that_costs_least(setup):
    model, (x_val, y_val) = setup
    stop = make_data(200, 2)
    result = harmonic_prune(model, x_val, y_val, stop_data=stop, layers=LAYERS, schedule="single", tolerance=1.0,
                            max_iterations=5, progress=False)
    history = result.history
    assert result.layers == LAYERS and history[0]["ranks"] == [6, 4, 7] and len(history) == 6
    current = copy.deepcopy(model)
    for before, after in zip(history, history[1:]):
        drops = [a - b for a, b in zip(before["ranks"], after["ranks"])]
        assert sorted(drops) == [0, 0, 1] and LAYERS[drops.index(1)] == after["layer"]
        # The chosen cut is the best of the three candidates on the selection set, each recomputed by hand.
        candidates = {name: hand_accuracy(truncated_into(current, name, rank - 1), x_val, y_val)
                      for name, rank in zip(LAYERS, before["ranks"])}
        assert after["selection_accuracy_before_retraining"] == pytest.approx(max(candidates.values()), abs=1e-12)
        assert candidates[after["layer"]] == pytest.approx(max(candidates.values()), abs=1e-12)
        current = truncated_into(current, after["layer"], after["ranks"][LAYERS.index(after["layer"])])
    pruned = result.model
    assert hand_accuracy(pruned, *stop) == pytest.approx(history[-1]["accuracy"], abs=1e-12)
    # The last DoubleLinear (7 -> 3, rank 3, not pruned) is at or above break-even 21 / 10: stored dense.
    expected = min(3 * (7 + 3), 7 * 3) + 3
    assert isinstance(pruned.get_submodule("7"), nn.Linear)
    for name, rank, (c_in, c_out, taps) in zip(LAYERS, history[-1]["ranks"], [(2, 6, 9), (6, 5, 9), (20, 7, 1)]):
        module = pruned.get_submodule(name)
        n = c_in * taps
        factored = rank * (n + c_out) < c_out * n
        assert isinstance(module, (DoubleConv2d, DoubleLinear)) == factored
        if factored:
            assert module.rank == rank
        mat = module.weight.detach().double().reshape(c_out, -1).numpy()
        assert np.linalg.matrix_rank(mat, tol=1e-5 * np.linalg.norm(mat, 2)) == rank
        expected += min(rank * (n + c_out), c_out * n) + c_out
        if name in ("0", "2"):
            assert isinstance(module, (nn.Conv2d, DoubleConv2d))
    assert history[-1]["parameters"] == expected == sum(p.numel() for p in pruned.parameters())
    # The cut convolutions keep their geometry: the pruned network runs on the same images.
    assert pruned(x_val[:2]).shape == (2, 3)


def test_grouped_convolutions_are_refused(setup):
    model = nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    x = torch.randn(10, 2, 4, 4)
    y = torch.zeros(10, dtype=torch.long)
    with pytest.raises(TypeError, match="grouped convolution \\(groups = 2\\)"):
        harmonic_prune(model, x, y, layers=["0"], max_iterations=1, progress=False)
    with pytest.raises(TypeError, match="grouped convolution"):      # found by discovery, refused as clearly
        harmonic_prune(model, x, y, max_iterations=1, progress=False)


def test_the_one_liner_on_the_digits_cnn_keeps_the_accuracy():
    """``harmonic_prune(cnn, x_val, y_val)`` with no floor and no retraining: within 1 pt of the start on the
    stopping half (no layer driven to rank 1 by a default)."""
    from relusv.torch.digits_cnn import load_digits_cnn

    model, x, y, _ = load_digits_cnn()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    result = harmonic_prune(model, x, y, progress=False)
    start = result.accepted[0]["accuracy"]
    assert result.accepted[-1]["accuracy"] >= start - 0.01
    assert hand_accuracy(result.model, x, y) > start - 0.05
    assert any(r > 1 for r in result.accepted[-1]["ranks"])
    assert result.parameters == sum(p.numel() for p in result.model.parameters())


class _Residual(nn.Module):
    """A ResNet basic block with a strided downsample, then a classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.down = nn.Conv2d(2, 6, 1, stride=2, bias=False)
        self.fc = nn.Linear(6 * 3 * 3, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.relu(self.bn2(self.conv2(h)) + self.down(x)).flatten(1))


def test_the_default_prunes_the_residual_branches_too():
    """The default layers are the hidden ones: ``conv1`` (feeds a ReLU) and ``conv2`` and ``down``, which reach
    the block's ReLU through the residual sum (MATH.md section 10), not the classifier; each becomes a double
    layer whose rank the history tracks, and the network as returned computes what its ranks say (hand
    truncation of every cut layer, BatchNorm left in place)."""
    torch.manual_seed(0)
    x, y = make_data(600, 3)
    model = trained(_Residual(), x, y, 60, lr=1e-2).eval()
    result = harmonic_prune(model, x, y, tolerance=0.02, progress=False)
    assert result.layers == ["conv1", "conv2", "down"]
    ranks = dict(zip(result.layers, result.accepted[-1]["ranks"]))
    assert ranks["conv2"] < 6 or ranks["down"] < 6 or ranks["conv1"] < 6
    for name in result.layers:
        assert isinstance(result.model.get_submodule(name), (nn.Conv2d, DoubleConv2d)), name
    by_hand = copy.deepcopy(model)
    for name, rank in ranks.items():
        w = getattr(by_hand, name).weight.detach().double().numpy()
        u, s, vt = np.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
        with torch.no_grad():
            truncated = (u[:, :rank] * s[:rank]) @ vt[:rank]
            getattr(by_hand, name).weight.copy_(torch.from_numpy(truncated.reshape(w.shape)))
    with torch.no_grad():
        torch.testing.assert_close(result.model(x[:50]), by_hand(x[:50]), rtol=1e-4, atol=1e-4)
