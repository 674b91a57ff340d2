"""Token-wise linear layers, activations inside composite modules and what discovery says it cannot see.

A ``Linear`` applied to ``(batch, tokens, d)`` inputs is a grouped layer of MATH.md section 9 with
``P = tokens`` (the tokens of one point are its positions): its output is laid out token by token, so
``phi(0) = ReLU(b)`` is repeated per token. Oracles: hand computations with the layer's weights.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv import gmw  # noqa: E402
from relusv.torch import Monitor, analyze, discover  # noqa: E402
from relusv.torch.sites import JointMap, branches_of_layer  # noqa: E402
from torch import nn  # noqa: E402

TOKENS, D, HIDDEN = 4, 6, 10


class MLPBlock(nn.Module):
    """A transformer block's MLP on tokens, with a residual sum and a classifier on the mean token."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, D)
        self.head = nn.Linear(D, 3)

    def forward(self, x):
        x = x + self.fc2(torch.relu(self.fc1(x)))
        return self.head(x.mean(1))


def _data(n=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, TOKENS, D, generator=g)
    with torch.no_grad():
        torch.manual_seed(seed)
        model = MLPBlock()
        model.fc1.bias.add_(torch.linspace(-1, 1, HIDDEN))     # a bias whose layout matters
        y = model(x).argmax(1)
    y[: n // 3] = (y[: n // 3] + 1) % 3                         # some errors
    return model, x, y


def test_token_wise_linear_s0_and_zero_rule_by_hand():
    model, x, y = _data()
    table = analyze(model, x, y, progress=False, relu_points=4, relu_options={"max_steps": 10}, repeats=2)
    row = table.set_index("layer").loc["fc1"]
    assert row["relu"] and row["relu_bounds"] == "computed"
    w, b = model.fc1.weight.detach().double(), model.fc1.bias.detach().double()
    for g in ("correct", "incorrect"):
        values = []
        for idx in table.attrs["subsets"][g]:
            z = x[idx].double() @ w.T + b                         # (n, tokens, hidden): token-major layout
            values.append(float((torch.relu(z) - torch.relu(b)).reshape(len(idx), -1).norm(dim=1).max()))
        assert row[f"s0_{g}"] == pytest.approx(np.mean(values), rel=1e-6)   # float32 activations
        curve = table.attrs["details"]["fc1"]["relu_bounds"][g]
        first = x[table.attrs["subsets"][g][0]].double()
        rank = np.linalg.matrix_rank((first.reshape(-1, D) @ w.T).numpy())
        assert curve["zero_from"] == min(rank, min(w.shape))
        assert max(curve["ks"]) < curve["zero_from"]
        assert curve["bound"][0] == pytest.approx(values[0], rel=1e-6)
    # the channel-major broadcast is a different (wrong) number here
    idx = table.attrs["subsets"]["correct"][0]
    z = (x[idx].double() @ w.T + b).reshape(len(idx), -1)
    wrong = torch.relu(b).repeat_interleave(TOKENS)
    assert abs(float((torch.relu(z) - wrong).norm(dim=1).max()) - row["s0_correct"]) > 1e-3


def test_token_wise_bounds_certified_from_factors():
    model, x, _ = _data(n=30)
    layer = {la.name: la for la in discover(model).layers}["fc1"]
    branches, bias = branches_of_layer(layer)
    joint = JointMap(branches, bias, layer.act, [(TOKENS, D)])
    assert joint.positions == TOKENS
    ks = [0, 1, 2, 4]
    spectrum = joint.bounds(x.reshape(30, -1).double().numpy(), ks, seed=1, max_steps=20)
    w, b = model.fc1.weight.detach().double(), model.fc1.bias.detach().double()
    exact = torch.relu(x.double() @ w.T + b)
    for k, bound, (u, v) in zip(ks, spectrum.bound, spectrum.factors):
        lm = torch.from_numpy(np.asarray(u) @ np.asarray(v))
        assert np.linalg.matrix_rank(lm.numpy()) <= k
        approx = torch.relu(x.double() @ lm.T + b)
        assert bound == pytest.approx(float((exact - approx).reshape(30, -1).norm(dim=1).max()), rel=1e-9, abs=1e-12)


def test_monitor_runs_on_token_wise_layers():
    model, x, y = _data()
    monitor = Monitor(model, x, y, relu_bounds=True, relu_ks=(0, 1), samples=20, subsets=2,
                      relu_options={"max_steps": 5})
    history = monitor.measure()
    assert {"fc1"} <= {layer.name for layer in monitor.layers}
    frame = history.to_frame() if hasattr(history, "to_frame") else None
    assert frame is None or len(frame) > 0


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm and activation in one module (as timm's ``BatchNormAct2d``): ``F.batch_norm`` then ``act``."""

    def __init__(self, channels, act):
        super().__init__(channels)
        self.act = act

    def forward(self, x):
        x = nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                     self.training, self.momentum, self.eps)
        return self.act(x)


def _composite_model():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), BatchNormAct2d(4, nn.ReLU()),
                          nn.Conv2d(4, 5, 3, padding=1), BatchNormAct2d(5, nn.SiLU()),
                          nn.Conv2d(5, 6, 1), BatchNormAct2d(6, nn.ReLU6()),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def test_activations_inside_composite_modules():
    found = discover(_composite_model())
    layers = {la.name: la for la in found.layers}
    assert [layers[n].activation for n in ("0", "2", "4", "8")] == ["relu", "silu", "relu6", None]
    assert layers["0"].batchnorm[0] == "1" and layers["2"].batchnorm[0] == "3"
    assert layers["0"].relu and layers["4"].clipped and not layers["2"].bounded
    model = _composite_model()
    monitor = Monitor(model, torch.randn(40, 3, 6, 6), torch.randint(0, 2, (40,)), samples=20, subsets=2)
    assert [layer.name for layer in monitor.layers] == ["0"]          # the ReLU inside BatchNormAct2d is seen
    monitor.measure()


def test_silu_rows_carry_post_silu_width():
    model = _composite_model()
    x = torch.randn(60, 3, 6, 6)
    y = torch.randint(0, 2, (60,))
    table = analyze(model, x, y, progress=False, relu_bounds=False, repeats=1, samples=50)
    relu_row = table.set_index("layer").loc["0"]
    assert np.isfinite(relu_row["s0_correct"]) and np.isfinite(relu_row["s0_incorrect"])   # s_0 without bounds
    assert relu_row["s0_verdict"].startswith("not compared")
    row = table.set_index("layer").loc["2"]
    idx = table.attrs["subsets"]["correct"][0]
    with torch.no_grad():
        after = model[3](model[2](model[1](model[0](x[idx])))).reshape(len(idx), -1).double().numpy()
    assert row["gmw_correct"] == pytest.approx(gmw(after, samples=50, seed=0, trim=table.attrs["settings"]["trim"],
                                                   progress=False), rel=1e-6)


def test_transformer_encoder_layer_linears_hooked_individually():
    torch.manual_seed(2)
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True))
    found = discover(model)
    layers = {la.name: la for la in found.layers}
    assert layers["0.linear1"].activation == "relu" and layers["0.linear2"].activation is None
    assert "does not trace" in found.opaque["0"] or "traced" in found.opaque["0"]
    assert "0.self_attn.out_proj" in found.skipped
    assert "never called as a module" in found.skipped["0.self_attn.out_proj"]
    assert "not called in forward" not in found.skipped.values()


def test_transformer_encoder_feed_forward_relu_is_found_inside_the_stack():
    """In a ``nn.TransformerEncoder`` (opaque as a whole) each layer's ``linear1`` is followed by its ReLU: the
    row is a ReLU row with bounds; a layer whose activation is not seen says so instead of "activation: none"."""
    torch.manual_seed(2)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))

    model = Tiny().eval()
    x, y = torch.randn(48, TOKENS, 8), torch.randint(0, 3, (48,))
    table = analyze(model, x, y, relu_points=3, progress=False).set_index("layer")
    for i in (0, 1):
        assert table.loc[f"enc.layers.{i}.linear1", "activation"] == "relu"
        assert table.loc[f"enc.layers.{i}.linear1", "relu_bounds"] == "computed"
        assert table.loc[f"enc.layers.{i}.linear2", "relu_bounds"].startswith(
            "not computed: the activation after it is not known")
    assert table.loc["head", "relu_bounds"] == "not a ReLU layer (activation: none)"


class TokenResidual(nn.Module):
    """``relu(x + fc(x))`` on tokens: a two-branch site (a linear layer and the identity) per position."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, D)
        self.head = nn.Linear(D, 2)

    def forward(self, x):
        return self.head(torch.relu(x + self.fc(x)).mean(1))


def test_token_residual_site_certified_from_factors():
    torch.manual_seed(6)
    model = TokenResidual().double().eval()
    site = next(s for s in discover(model).sites)
    assert sorted(b.kind for b in site.branches) == ["identity", "linear"]
    x = torch.randn(20, TOKENS, D, dtype=torch.float64)
    shapes = [(TOKENS, D)] * 2
    joint = JointMap(site.branches, site.bias, site.activation, shapes)
    assert joint.matrix.shape == (D, 2 * D) and joint.positions == TOKENS
    points = torch.cat([x.reshape(20, -1)] * 2, 1).numpy()
    ks = [0, 2, 5]
    spectrum = joint.bounds(points, ks, seed=0, max_steps=10)
    exact = torch.relu(x + model.fc(x)).detach()
    b = model.fc.bias.detach()
    for k, bound, (u, v) in zip(ks, spectrum.bound, spectrum.factors):
        lm = torch.from_numpy(np.asarray(u) @ np.asarray(v))
        assert np.linalg.matrix_rank(lm.numpy()) <= k
        approx = torch.relu(torch.cat([x, x], 2) @ lm.T + b)      # both branches read x: stacked input (x, x)
        assert bound == pytest.approx(float((exact - approx).reshape(20, -1).norm(dim=1).max()), rel=1e-9, abs=1e-12)
