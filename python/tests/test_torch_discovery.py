"""relusv.torch.discover: layers of any nn.Module found by tracing, named by qualified module names.

Models: an MLP with ``F.relu`` in ``forward``; a model with BatchNorm1d; a
custom block class with a GELU branch; a small CNN with BatchNorm2d and
``x.relu()``; a model that does not trace. Oracles: the layers and names
written down from each model's ``forward``; BatchNorm folding against the
unfolded eval-mode forward pass (float64).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import DoubleLinear, discover, fold_batchnorm  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


class FunctionalMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.fc2 = nn.Linear(10, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = torch.relu_(self.fc2(h))      # in place, functional
        return self.head(h)


class BatchNormMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 10)
        self.bn1 = nn.BatchNorm1d(10)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(10, 8)
        self.act = nn.LeakyReLU(0.1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.act(self.fc2(self.drop(F.relu(self.bn1(self.fc1(x)))))))


class Block(nn.Module):
    """A ReLU path and a GELU path added together."""

    def __init__(self, width):
        super().__init__()
        self.main = nn.Linear(width, width)
        self.gate = nn.Linear(width, width)
        self.gelu = nn.GELU()

    def forward(self, x):
        return F.relu(self.main(x)) + self.gelu(self.gate(x))


class BlockNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = DoubleLinear(6, 12, rank=4, seed=0)
        self.blocks = nn.Sequential(Block(12), Block(12))
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        return self.out(self.blocks(F.relu(self.stem(x))))


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6 * 3 * 3, 3)

    def forward(self, x):
        h = self.bn1(self.conv1(x)).relu()
        h = F.max_pool2d(h, 2)
        h = F.relu(self.conv2(h), inplace=True)
        return self.fc(h.flatten(1))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.r = nn.ReLU()
        self.b = nn.Linear(5, 2)

    def forward(self, x):
        if x.sum() > 0:           # data-dependent control flow: torch.fx cannot trace it
            x = -x
        return self.b(self.r(self.a(x)))


def summary(model):
    return [(l.name, l.kind, l.activation, l.folded) for l in discover(model).layers]


def test_functional_relu_in_forward():
    assert summary(FunctionalMLP()) == [("fc1", "linear", "relu", ""), ("fc2", "linear", "relu", ""),
                                        ("head", "linear", None, "")]
    found = discover(FunctionalMLP())
    assert found.method == "trace" and [l.relu for l in found.layers] == [True, True, False]
    assert "model's output" in found.layers[-1].notes[0]


def test_batchnorm_dropout_and_leaky_relu():
    layers = discover(BatchNormMLP()).layers
    assert [(l.name, l.activation, l.folded) for l in layers] == [
        ("fc1", "relu", "bn1 (BatchNorm1d)"), ("fc2", "leaky_relu", ""), ("head", None, "")]
    assert layers[1].leaky_slope == pytest.approx(0.1)


def test_custom_block_with_a_gelu_branch_is_not_relu():
    layers = discover(BlockNet()).layers
    assert [(l.name, l.activation, l.relu) for l in layers] == [
        ("stem", "relu", True),
        ("blocks.0.main", "relu", True), ("blocks.0.gate", "gelu", False),
        ("blocks.1.main", "relu", True), ("blocks.1.gate", "gelu", False),
        ("out", None, False)]
    assert isinstance(layers[0].module, DoubleLinear)       # kept whole, not traced into
    assert any("not a ReLU" in n for n in layers[2].notes)
    model = BlockNet()
    for layer in discover(model).layers:
        assert model.get_submodule(layer.name) is layer.module


def test_small_cnn_layers_and_kernel_matrix():
    model = SmallCNN()
    layers = discover(model).layers
    assert summary(model) == [("conv1", "conv2d", "relu", "bn1 (BatchNorm2d)"), ("conv2", "conv2d", "relu", ""),
                              ("fc", "linear", None, "")]
    assert tuple(layers[1].matrix().shape) == (6, 4 * 3 * 3)   # K_mat = K.reshape(C_out, -1)


def _randomise_batchnorm(bn, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g, dtype=torch.float64) + 0.5)
        bn.weight.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))
        bn.bias.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))


def test_folded_batchnorm_equals_the_unfolded_forward_pass():
    torch.manual_seed(0)
    mlp = BatchNormMLP().double().eval()
    _randomise_batchnorm(mlp.bn1, 1)
    x = torch.randn(50, 6, dtype=torch.float64)
    layer = discover(mlp).layers[0]
    with torch.no_grad():
        unfolded = torch.relu(mlp.bn1(mlp.fc1(x)))
        folded = torch.relu(x @ layer.weight().T + layer.bias())
        assert torch.allclose(folded, unfolded, rtol=1e-12, atol=1e-12)
        assert torch.allclose(layer.activate(mlp.fc1(x)), unfolded, rtol=0, atol=0)
        assert torch.allclose(layer.folded_module()(x), mlp.bn1(mlp.fc1(x)), rtol=1e-12, atol=1e-12)
    cnn = SmallCNN().double().eval()
    _randomise_batchnorm(cnn.bn1, 2)
    images = torch.randn(7, 1, 6, 6, dtype=torch.float64)
    conv = discover(cnn).layers[0]
    with torch.no_grad():
        unfolded = cnn.bn1(cnn.conv1(images))
        w, b = fold_batchnorm(cnn.conv1.weight, cnn.conv1.bias, cnn.bn1)
        assert torch.allclose(F.conv2d(images, w, b, padding=1), unfolded, rtol=1e-12, atol=1e-12)
        assert torch.allclose(conv.folded_module()(images), unfolded, rtol=1e-12, atol=1e-12)
    # The folding left the model alone.
    assert not torch.equal(cnn.conv1.weight, w)


def test_a_model_that_does_not_trace_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="does not trace"):
        found = discover(Untraceable())
    assert found.method == "registration order" and "TraceError" in found.trace_error
    assert [(l.name, l.activation) for l in found.layers] == [("a", "relu"), ("b", None)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = discover(Untraceable(), layers=["b", "a"])
    assert named.method == "names" and [l.name for l in named.layers] == ["b", "a"]
    with pytest.raises(ValueError, match="no submodule named 'c'"):
        discover(Untraceable(), layers=["c"])


def test_reshapes_between_a_layer_and_its_relu_and_a_batchnorm_that_does_not_fit():
    class Reshaped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm1d(2 * 4 * 4)      # over the flattened map: not one scale per channel
            self.fc = nn.Linear(32, 3)

        def forward(self, x):
            return self.fc(F.relu(self.bn(self.conv(x).flatten(1))))

    class FlatRelu(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(32, 3)

        def forward(self, x):
            return self.fc(self.conv(x).view(x.shape[0], -1).relu())

    conv = discover(Reshaped()).layers[0]
    assert conv.activation is None and conv.batchnorm is None and "cannot be folded" in conv.notes[-1]
    assert [(l.name, l.activation) for l in discover(FlatRelu()).layers] == [("conv", "relu"), ("fc", None)]


def test_a_module_called_twice_is_skipped_with_its_reason():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(F.relu(self.fc(F.relu(self.fc(x)))))

    found = discover(Shared())
    assert found.names() == ["out"] and "called 2 times" in found.skipped["fc"]


def untrained_with_errors(points: int, seed: int):
    """A FunctionalMLP and probe labels that are its own predictions, a fifth of them changed (misclassified)."""
    torch.manual_seed(seed)
    model = FunctionalMLP()
    x = torch.randn(points, 6)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:points // 5] = (y[:points // 5] + 1) % 3
    return model, x, y


def test_monitor_and_pruning_find_functional_relus():
    from relusv.torch import Monitor, harmonic_prune

    model, x, y = untrained_with_errors(200, 0)
    monitor = Monitor(model, x, y, samples=10, repeats=1)
    assert [l.name for l in monitor.layers] == ["fc1", "fc2"]
    monitor.measure()
    assert {r["layer"] for r in monitor.history} == {"fc1", "fc2"}
    result = harmonic_prune(model, x, y, max_iterations=1)
    assert result.layers == ["fc1", "fc2"]


def test_notebook_conveniences_reprs_pandas_and_a_step_without_schedule():
    import relusv
    from relusv.torch import Monitor, harmonic_prune

    model, x, y = untrained_with_errors(120, 1)
    monitor = Monitor(model, x, y, samples=10, repeats=2, every_epochs=1)
    with pytest.warns(UserWarning, match="measures nothing"):
        assert monitor.step() is None                    # no every_steps: says so instead of silence
    monitor.epoch_end()
    text = repr(monitor)
    assert "fc1, fc2" in text and "120 probe points" in text and "1 measurements" in text and len(text) < 300
    assert "accuracy" in repr(monitor.last) and len(repr(monitor.last)) < 300
    frame = monitor.history.to_pandas()
    assert list(frame.columns) == monitor.history.columns() and len(frame) == len(monitor.history)
    assert set(frame["layer"]) == {"fc1", "fc2"}
    spectrum = relusv.relu_singular_values(np.eye(3), None, np.eye(3), [0, 1, 2], max_steps=5)
    assert repr(spectrum).startswith("ReluSpectrum(3 ranks over 3 points") and len(repr(spectrum)) < 300
    result = harmonic_prune(model, x, y, max_iterations=1)
    assert repr(result).startswith("PruneResult(1 iterations") and "fc1" in repr(result)
