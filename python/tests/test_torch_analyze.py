"""relusv.torch.analyze: one row per layer, every value recomputed from activations captured by hand.

Oracles: activations captured layer by layer with the model's own modules
(BatchNorm in eval form), the classification by hand, the subsets redrawn
with ``equal_size_subsets`` and the same seed, every width recomputed with
``relusv.gmw`` / ``relusv.diameter`` (one direction seed for every repeat and
both groups: the paired design of MATH.md section 11), the comparison columns
checked against their definitions (mean paired difference, Holm over the
table, verdict from the adjusted p), spectra with ``numpy.linalg.svd``,
``s_0`` by its closed form (MATH.md section 2), bound curves with
``relusv.relu_singular_values`` on the same points and ranks. Also: the
model's modes, gradients, parameters and random state untouched; a
DataLoader gives the table of tensors; a stated reason instead of a bare NaN
when one group is empty; and ``relusv report`` on a model class defined
here (``--model test_torch_analyze:build --weights``), with the same names
in the monitor, the table and the report.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pd = pytest.importorskip("pandas")
import relusv  # noqa: E402
from relusv.torch import Monitor, analyze, equal_size_subsets  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SEED, SAMPLES, REPEATS = 3, 40, 3


class Net(nn.Module):
    """Linear -> BatchNorm1d -> F.relu, Linear -> ReLU, a GELU side layer, logits."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 12)
        self.side = nn.Linear(16, 12)
        self.head = nn.Linear(12, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.fc1(x)))
        return self.head(torch.relu(self.fc2(h)) + F.gelu(self.side(h)))


def build():
    """The callable ``relusv report --model test_torch_analyze:build`` imports."""
    torch.manual_seed(0)
    return Net()


def make_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 0.7).long()
    return x, y


@pytest.fixture(scope="module")
def trained():
    model = build()
    x, y = make_data(1500, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    px, py = make_data(600, 1)
    return model, px, py


def hand_activations(model, x):
    """{(layer, site): rows} by hand, and the predictions."""
    with torch.no_grad():
        z1 = model.fc1(x)
        h = F.relu(model.bn(z1))
        z2 = model.fc2(h)
        s = model.side(h)
        out = model.head(torch.relu(z2) + F.gelu(s))
    acts = {("fc1", "input"): x, ("fc1", "output"): h, ("fc2", "input"): h, ("fc2", "output"): torch.relu(z2),
            ("side", "input"): h, ("side", "output"): F.gelu(s),
            ("head", "input"): torch.relu(z2) + F.gelu(s), ("head", "output"): out}
    return {k: v.numpy() for k, v in acts.items()}, out.argmax(1)


def run(model, x, y, **kw):
    return analyze(model, x, y, seed=SEED, samples=SAMPLES, repeats=REPEATS, relu_points=4,
                   relu_options={"max_steps": 20}, progress=False, **kw)


@pytest.fixture(scope="module")
def table(trained):
    model, x, y = trained
    return run(model, x, y)


def test_rows_names_and_kinds(table):
    assert list(table["layer"]) == ["fc1", "fc2", "side", "head"]
    assert list(table["activation"]) == ["relu", "relu", "gelu", "none"]
    assert list(table["relu"]) == [True, True, False, False]
    assert table.loc[0, "folded"] == "bn (BatchNorm1d)"
    assert table.loc[2, "relu_bounds"].startswith("not a ReLU layer")
    assert np.isnan(table.loc[2, "s0_correct"]) and np.isfinite(table.loc[2, "gmw_correct"])
    assert "layers" in repr(table.attrs["discovery"]) and table.attrs["discovery"]["method"] == "trace"


def test_values_equal_the_library_on_hand_captured_activations(trained, table):
    model, x, y = trained
    acts, predicted = hand_activations(model, x)
    correct = (predicted == y).numpy()
    a = table.attrs
    assert a["correct"] == correct.sum() and a["accuracy"] == pytest.approx(correct.mean())
    size = min(correct.sum(), (~correct).sum())
    assert a["group_size"] == size and size >= 20
    subsets = equal_size_subsets(correct, size, REPEATS, SEED)
    for g in ("correct", "incorrect"):
        assert [list(s) for s in subsets[g]] == a["subsets"][g]
    for row in table.to_dict("records"):
        name = row["layer"]
        detail = a["details"][name]
        layer_module = model.get_submodule(name)
        w = layer_module.weight.detach().double()
        b = layer_module.bias.detach().double()
        if name == "fc1":   # BatchNorm folded by hand
            bn = model.bn
            scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
            w, b = scale[:, None] * w, scale * (b - bn.running_mean.double()) + bn.bias.detach().double()
        w, b = w.numpy(), b.numpy()
        sigma = np.linalg.svd(w, compute_uv=False)
        # The folded weight is stored in the layer's float32 (relative rounding 6e-8).
        tol = 1e-6 if name == "fc1" else 1e-10
        np.testing.assert_allclose(detail["singular_values"], sigma, rtol=tol, atol=1e-12 * sigma[0])
        assert row["sigma_0"] == pytest.approx(sigma[0], rel=tol)
        assert row["stable_rank"] == pytest.approx((sigma ** 2).sum() / sigma[0] ** 2, rel=tol)
        assert row["rank"] == np.linalg.matrix_rank(w.astype(np.float32))
        for site, prefix in (("output", ""), ("input", "input_")):
            points = acts[(name, site)]
            for g in ("correct", "incorrect"):
                widths, dims = [], []
                for r in range(REPEATS):
                    idx = subsets[g][r]
                    w_r = relusv.gmw(points[idx], samples=SAMPLES, seed=SEED)
                    widths.append(w_r)
                    dims.append((w_r / relusv.diameter(points[idx])) ** 2)
                # Batched forward passes round like the hand pass to float32 (~1e-7 relative).
                np.testing.assert_allclose(detail[site][g]["gmw"], widths, rtol=1e-5)
                np.testing.assert_allclose(detail[site][g]["effective_dimension"], dims, rtol=1e-4)
                assert row[f"{prefix}gmw_{g}"] == pytest.approx(np.mean(widths), rel=1e-5)
                assert row[f"{prefix}gmw_{g}_spread"] == pytest.approx(np.std(widths, ddof=1), rel=1e-3, abs=1e-6)
            c, i = detail[site]["correct"]["gmw"], detail[site]["incorrect"]["gmw"]
            assert row[f"{prefix}gmw_difference"] == pytest.approx(np.mean(np.subtract(c, i)), rel=1e-12)
            assert row[f"{prefix}gmw_effect"] == pytest.approx(
                np.mean(np.subtract(c, i)) / np.mean(np.concatenate([c, i])), rel=1e-12)
            assert row[f"{prefix}gmw_effect_low"] <= row[f"{prefix}gmw_effect_high"]
            assert 1 / (table.attrs["design"]["permutations"] + 1) <= row[f"{prefix}gmw_p_value"] <= row[f"{prefix}gmw_p_adjusted"] <= 1
        if not row["relu"]:
            continue
        for g in ("correct", "incorrect"):
            # s_0 exactly, on every repeat's set (MATH.md section 2).
            s0 = [np.linalg.norm(np.maximum(acts[(name, "input")][subsets[g][r]].astype(np.float64)
                                            @ w.T + b, 0) - np.maximum(b, 0), axis=1).max() for r in range(REPEATS)]
            np.testing.assert_allclose(detail["s0"][g], s0, rtol=1e-5)
            # The curve: relu_singular_values on the first subset, at the same ranks, below rank(X W^T).
            curve = detail["relu_bounds"][g]
            xin = acts[(name, "input")][subsets[g][0]].astype(np.float64)
            assert curve["zero_from"] == min(min(w.shape), np.linalg.matrix_rank(xin @ w.T))
            assert max(curve["ks"]) < curve["zero_from"]
            ref = relusv.relu_singular_values(w, b, xin, curve["ks"], seed=SEED, max_steps=20, progress=False)
            np.testing.assert_allclose(curve["bound"], ref.bound, rtol=1e-4)
            assert curve["bound"][0] == pytest.approx(s0[0], rel=1e-5)
    _check_family(table)


def _check_family(table):
    """Every stated comparison is one member of a Holm family (recomputed here) and its verdict follows."""
    prefixes = [p for p in ("input_gmw", "gmw", "s0") if f"{p}_p_value" in table]
    members = [(i, p) for i in range(len(table)) for p in prefixes if np.isfinite(table.loc[i, f"{p}_p_value"])]
    p = np.array([table.loc[i, f"{q}_p_value"] for i, q in members])
    order = np.argsort(p, kind="stable")
    m = len(p)
    holm = np.maximum.accumulate(np.minimum(1, (m - np.arange(m)) * p[order]))
    assert table.attrs["family"] == m
    for rank, k in enumerate(order):
        i, q = members[k]
        assert table.loc[i, f"{q}_p_adjusted"] == pytest.approx(holm[rank], rel=1e-12)
        expected = "no difference shown" if holm[rank] >= 0.05 else \
            ("correct larger" if table.loc[i, f"{q}_difference"] > 0 else "incorrect larger")
        assert table.loc[i, f"{q}_verdict"] == expected


def test_model_state_untouched_and_dataloader_gives_the_same_table(trained):
    model, x, y = trained
    model.train()
    model.bn.eval()                                         # a mixed state must come back exactly
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    first = run(model, x, y, relu_bounds=False)
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), params))
    assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers))   # BatchNorm statistics too
    assert torch.equal(torch.get_rng_state(), rng)
    model.zero_grad(set_to_none=True)
    model.eval()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128)
    from_loader = run(model, loader, None, relu_bounds=False)
    from_numpy = run(model, x.numpy(), y.numpy(), relu_bounds=False)
    for other in (from_loader, from_numpy):
        pd.testing.assert_frame_equal(other, first)
    shuffled = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=False"):
        run(model, shuffled, None, relu_bounds=False)
    # Labels alone cannot reveal a shuffle of points of one class; the inputs do.
    one_class = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros_like(y)), batch_size=128,
                                            shuffle=True, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="shuffle=False"):
        run(model, one_class, None, relu_bounds=False)


def test_all_correct_gives_a_stated_reason(trained):
    model, x, _ = trained
    with torch.no_grad():
        y = model(x).argmax(1)
    table = run(model, x, y)
    assert table.attrs["comparison"].startswith(f"all {len(x)} probe points are classified correctly")
    assert all(v.startswith("not compared: all") for v in table["gmw_verdict"])
    assert table.loc[0, "relu_bounds"].startswith("not computed over the data: all")
    assert np.isfinite(table["sigma_0"]).all()


def test_conv_rows():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.eval()
    x = torch.randn(300, 1, 8, 8)
    y = torch.randint(0, 3, (300,))
    table = run(model, x, y)
    conv = table.iloc[0]
    assert (conv["layer"], conv["kind"], conv["folded"]) == ("0", "conv2d", "1 (BatchNorm2d)")
    assert conv["weight_shape"] == (4, 1, 3, 3) and conv["matrix_shape"] == (4, 9)
    assert conv["dimension"] == 4 * 6 * 6 and conv["input_dimension"] == 64
    if not hasattr(relusv.torch, "relu_singular_values"):
        assert conv["relu_bounds"].startswith("not computed: convolution bounds need")
    # s_0 of the conv layer exactly: max over images of ||ReLU(A x + b') - ReLU(b')||.
    detail = table.attrs["details"]["0"]
    idx = table.attrs["subsets"]["correct"][0]
    with torch.no_grad():
        out = torch.relu(model[1](model[0](x[idx]))).flatten(1).double()
        from relusv.torch import fold_batchnorm

        _, b = fold_batchnorm(model[0].weight, model[0].bias, model[1])
        at_zero = torch.relu(b.double()).repeat_interleave(36)
    assert detail["s0"]["correct"][0] == pytest.approx(float((out - at_zero).norm(dim=1).max()), rel=1e-5)


def _dense_operator(conv, bn, shape):
    """The matrix of ``x -> bn_scale * conv(x)`` without bias on ``shape`` inputs, column by column, float64."""
    n = int(np.prod(shape))
    layer = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                      padding_mode=conv.padding_mode, bias=False).double()
    scale = torch.ones(conv.out_channels, dtype=torch.float64) if bn is None else \
        (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double()
    with torch.no_grad():
        layer.weight.copy_(conv.weight.double() * scale[:, None, None, None])
        return layer(torch.eye(n, dtype=torch.float64).reshape(n, *shape)).reshape(n, -1).T.numpy()


def test_operator_norm_against_the_dense_operator():
    """Exact for a circular stride-1 conv (BatchNorm folded), an estimate from below otherwise, sigma_0 for Linear;
    the oracle is the top singular value of the dense operator matrix (numpy.linalg.svd)."""
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(3)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), bn, nn.ReLU(),
                          nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    with torch.no_grad():
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
    model.eval()
    x, y = torch.randn(120, 2, 6, 6), torch.randint(0, 3, (120,))
    table = run(model, x, y, relu_bounds=False).set_index("layer")
    circular = np.linalg.svd(_dense_operator(model[0], bn, (2, 6, 6)), compute_uv=False)[0]
    strided = np.linalg.svd(_dense_operator(model[3], None, (3, 6, 6)), compute_uv=False)[0]
    linear = np.linalg.svd(model[6].weight.detach().double().numpy(), compute_uv=False)[0]
    assert table.loc["0", "operator_norm_method"] == "exact (circular)"
    # BatchNorm is folded into the float32 weight in float32 (rounding ~1e-7); the oracle folds in float64.
    assert table.loc["0", "operator_norm"] == pytest.approx(circular, rel=1e-6)
    # A small zero-padded layer: a certified bracket (dense matrix, Cholesky certificate), tight.
    assert table.loc["3", "operator_norm_method"].startswith("bracket (dense, Cholesky certificate), gap ")
    assert table.loc["3", "operator_norm_lower"] <= strided <= table.loc["3", "operator_norm"]
    assert table.loc["3", "operator_norm"] == pytest.approx(strided, rel=1e-6)
    assert (table.loc["6", "operator_norm"], table.loc["6", "operator_norm_method"]) == \
        (pytest.approx(linear, rel=1e-10), "exact")
    assert table.loc["6", "operator_norm"] == table.loc["6", "sigma_0"] == table.loc["6", "operator_norm_lower"]


def _dense_top(conv: nn.Conv2d, shape) -> float:
    """Oracle: the top singular value of the module's matrix (bias removed), built column by column, float64."""
    n = int(np.prod(shape))
    with torch.no_grad():
        basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
        columns = conv.double()._conv_forward(basis, conv.weight, None).reshape(n, -1)
    conv.float()
    return float(torch.linalg.svdvals(columns)[0])


def test_operator_norms_of_1x1_grouped_and_larger_convolutions_are_certified():
    """1x1: exact; grouped: a bracket (no longer "not computed"); a layer too large for the dense route:
    Lanczos below, the circular torus above, never a bare estimate."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 12, 3)).eval()
    x, y = torch.randn(100, 3, 16, 12), torch.randint(0, 3, (100,))
    table = run(model, x, y, relu_bounds=False).set_index("layer")
    assert table.loc["0", "operator_norm_method"] == "exact (1x1 kernel)"
    assert table.loc["0", "operator_norm"] == pytest.approx(_dense_top(model[0], (3, 16, 12)), rel=1e-9)
    for name, method in (("2", "bracket (Lanczos, circular torus)"), ("4", "bracket (Lanczos, circular torus)")):
        top = _dense_top(model[int(name)], (8, 16, 12))
        row = table.loc[name]
        assert row["operator_norm_method"].startswith(method + ", gap ")
        assert row["operator_norm_lower"] <= top <= row["operator_norm"]
        gap = (row["operator_norm"] - row["operator_norm_lower"]) / row["operator_norm"]
        assert f"gap {gap:.1e}" in row["operator_norm_method"] and gap < 0.2
        assert row["operator_norm_lower"] == pytest.approx(top, rel=1e-3)


def test_same_names_in_monitor_analyze_and_report(trained, tmp_path, capsys):
    from relusv.cli import main

    model, x, y = trained
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    np.savez(tmp_path / "probe.npz", X=x.numpy(), y=y.numpy())
    code = main(["report", "--model", "test_torch_analyze:build", "--weights", str(tmp_path / "weights.pt"),
                 "--data", str(tmp_path / "probe.npz"), "--out", str(tmp_path / "r"), "--quick", "--no-progress",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    names = [layer["name"] for layer in report["layers"]]
    assert names == ["fc1", "fc2", "side", "head"] == list(run(model, x, y, relu_bounds=False)["layer"])
    assert report["layers"][0]["folded"] == "bn (BatchNorm1d)" and report["layers"][2]["activation"] == "gelu"
    assert report["pruning"]["names"] == ["fc1", "fc2"] and "harmonic_prune" in report["model"]["pruning"]
    monitor = Monitor(model, x, y, samples=10, repeats=1)
    monitor.measure()
    assert sorted({r["layer"] for r in monitor.history}) == ["fc1", "fc2"]   # the ReLU layers
    csv = (tmp_path / "r" / "layers.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in csv[1:]] == names
    page = (tmp_path / "r" / "index.html").read_text()
    assert all(f"<code>{n}</code>" in page for n in names) and "bn (BatchNorm1d) folded" in page
    # Weights that do not fit the architecture: one line, exit 2.
    torch.save({"fc1.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    code = main(["report", "--model", "test_torch_analyze:build", "--weights", str(tmp_path / "bad.pt"),
                 "--data", str(tmp_path / "probe.npz"), "--out", str(tmp_path / "r2")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("relusv: error: --weights") and err.count("\n") == 1


def test_analyze_and_monitor_agree_value_for_value(trained):
    """Same model, data, seed and settings: the same sets, widths, statistics, adjusted p and verdicts
    (the Holm family is the four sites of fc1 and fc2 in both: analyze without ReLU bounds states no s_0)."""
    model, x, y = trained
    settings = dict(seed=SEED, samples=SAMPLES, repeats=REPEATS, permutations=300, bootstrap=60, max_group_size=150,
                    batch_size=128)
    table = analyze(model, x, y, layers=["fc1", "fc2"], relu_bounds=False, progress=False, **settings)
    monitor = Monitor(model, x, y, layers=["fc1", "fc2"], singular_values=False, **settings)
    records = monitor.measure()
    assert {g: [s.tolist() for s in v] for g, v in monitor.last.subsets.items()} == table.attrs["subsets"]
    compared = 0
    for row in table.to_dict("records"):
        for site, prefix in (("output", ""), ("input", "input_")):
            (rec,) = records.select(layer=row["layer"], site=site, quantity="gmw_difference")
            assert rec["value"] == pytest.approx(row[f"{prefix}gmw_difference"], rel=1e-9, abs=1e-12)
            for key in ("effect", "effect_low", "effect_high"):
                assert rec[key] == pytest.approx(row[f"{prefix}gmw_{key}"], rel=1e-9, abs=1e-12)
            assert rec["p_value"] == row[f"{prefix}gmw_p_value"]
            assert rec["p_adjusted"] == row[f"{prefix}gmw_p_adjusted"]
            assert rec["verdict"] == row[f"{prefix}gmw_verdict"]
            for g in ("correct", "incorrect"):
                (width,) = records.select(layer=row["layer"], site=site, group=g, quantity="gmw")
                assert width["value"] == pytest.approx(row[f"{prefix}gmw_{g}"], rel=1e-9)
                assert width["spread"] == pytest.approx(row[f"{prefix}gmw_{g}_spread"], rel=1e-6, abs=1e-12)
                assert width["repeats"] == REPEATS
            compared += 1
    assert compared == 4 and table.attrs["family"] == 4


def test_analyze_and_the_report_state_the_same_comparisons(trained, tmp_path, capsys):
    """One procedure (MATH.md section 11) behind ``analyze`` and ``relusv report``: on the same model, data,
    seed and settings, every comparison the report states (widths along the depths, the exact ``s_0``) has the
    numbers, the Holm-adjusted p and the verdict of the matching ``analyze`` column."""
    from relusv.cli import main

    model, x, y = trained
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    np.savez(tmp_path / "probe.npz", X=x.numpy(), y=y.numpy())
    code = main(["report", "--model", "test_torch_analyze:build", "--weights", str(tmp_path / "weights.pt"),
                 "--data", str(tmp_path / "probe.npz"), "--out", str(tmp_path / "r"), "--quick", "--no-progress",
                 "--json", "--seed", "0"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    s = report["settings"]
    table = analyze(model, x, y, seed=s["seed"], samples=s["gmw_samples"], trim=s["gmw_trim"], repeats=s["repeats"],
                    max_group_size=s["max_group_size"], relu_points=s["spectrum_points"],
                    relu_options={"max_steps": s["spectrum_max_steps"]}, progress=False).set_index("layer")
    fields = ("difference", "effect", "effect_low", "effect_high", "p_value", "p_adjusted")
    compared = 0
    for depth in report["depths"]:
        if not depth.get("comparison"):
            continue
        prefix = "input_gmw" if depth["name"] == "input" else "gmw"
        row = table.loc[depth["layer"]]
        assert depth["gmw"]["correct"]["mean"] == pytest.approx(row[f"{prefix}_correct"], rel=1e-12)
        for field in fields:
            assert depth["comparison"][field] == pytest.approx(row[f"{prefix}_{field}"], rel=1e-12), (depth, field)
        compared += 1
    for layer in report["layers"]:
        if layer.get("top_bound_comparison"):
            row = table.loc[layer["name"]]
            for field in ("p_value", "p_adjusted"):
                assert layer["top_bound_comparison"][field] == pytest.approx(row[f"s0_{field}"], rel=1e-12)
            assert layer["top_bound_verdict"] == row["s0_verdict"]
            compared += 1
    assert compared >= 6


def test_survey_fit_stride_scales_with_the_layer(monkeypatch):
    from relusv.layer_table import SURVEY_FIT_WORK, LayerInput, _conv_curve, relu_curve, survey_fit_stride

    assert survey_fit_stride(100, 27, 16) == 1                                  # a small layer: every rank fitted
    assert survey_fit_stride(960, 576, 128) == 8                                # ResNet-18's layer2.0.conv1, 60 images
    assert survey_fit_stride(3840, 576, 64) is None                             # ResNet-18's layer1: candidates only
    assert survey_fit_stride(1, 1, int(SURVEY_FIT_WORK)) == 1 and survey_fit_stride(1, 1, int(SURVEY_FIT_WORK) + 1) == 2
    assert survey_fit_stride(1, 1, int(3 * SURVEY_FIT_WORK)) == 4
    assert survey_fit_stride(1, 1, int(8 * SURVEY_FIT_WORK)) == 8 and survey_fit_stride(1, 1, int(8 * SURVEY_FIT_WORK) + 1) is None
    seen = []

    class Bounds:                                                               # records what the curve asks for
        positions = 64

        def __call__(self, images, ks, seed, options):
            seen.append(dict(options))
            raise StopIteration

    for images, cols, stride, steps in ((51, 576, None, 0), (20, 576, 8, 50), (51, 9, None, 50)):
        layer = LayerInput("c", "conv2d", "Conv2d", "relu", True, 0.0, "", (), (64, cols // 9, 3, 3),
                           np.zeros((64, cols)), np.zeros(64), 0, conv_bounds=Bounds())
        with pytest.raises(StopIteration):
            _conv_curve(layer, np.zeros((images, cols // 9, 8, 8)), 9, 0, {"max_steps": 50})
        assert seen[-1].get("fit_stride") == stride and seen[-1]["max_steps"] == steps
    with pytest.raises(StopIteration):                                          # an explicit stride is kept
        _conv_curve(layer, np.zeros((51, 1, 8, 8)), 9, 0, {"fit_stride": 1})
    assert seen[-1]["fit_stride"] == 1
    # Linear curves follow the same rule (VGG-11's 25088 -> 4096 classifier over 461 points: no fits).
    import relusv

    def record(w, b, x, ks, **options):
        seen.append(options)
        raise StopIteration

    monkeypatch.setattr(relusv, "relu_singular_values", record)
    for points, inputs, outputs, stride, steps in ((461, 25088, 4096, None, 0), (100, 64, 100, None, 50),
                                                   (400, 500, 200, 4, 50)):
        w, x = np.eye(outputs, inputs), np.ones((points, inputs))
        dense = LayerInput("f", "linear", "Linear", "relu", True, 0.0, "", (), w.shape, w, np.zeros(outputs), 0)
        with pytest.raises(StopIteration):
            relu_curve(dense, w, None, x, 9, 0, {"max_steps": 50})
        assert seen[-1].get("fit_stride") == stride and seen[-1]["max_steps"] == steps


def test_the_table_does_not_depend_on_the_pool_size(monkeypatch):
    """The table's native work runs on a pool of one thread per core (``relusv._workers``), each call on one
    thread: one, two or three pool threads give the same table, value for value."""
    import relusv._workers as workers

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 8 * 8, 3)).eval()
    x, y = torch.randn(200, 2, 8, 8), torch.randint(0, 3, (200,))
    tables = []
    for cores in (1, 2, 3):
        monkeypatch.setattr(workers, "available_cores", lambda cores=cores: cores)
        tables.append(analyze(model, x, y, samples=SAMPLES, repeats=REPEATS, seed=SEED, progress=False))
    for other in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], other, check_exact=True)
        assert json.dumps(tables[0].attrs["details"], default=str) == json.dumps(other.attrs["details"], default=str)
    assert (tables[0]["relu_bounds"] == "computed").sum() == 2


@pytest.mark.parametrize("groups, block", [(8, (1, 9)), (4, (3, 18)), (2, (5, 2))])
def test_grouped_kernel_spectrum_is_the_dense_one(groups, block):
    """A grouped convolution's block-diagonal kernel matrix: the union of its blocks' singular values equals the
    dense matrix's SVD (NumPy); a matrix with entries outside the blocks takes the dense route."""
    from relusv.layer_table import LayerInput, kernel_singular_values

    rng = np.random.default_rng(groups)
    mg, ng = block
    dense = np.zeros((groups * mg, groups * ng))
    for g in range(groups):
        dense[g * mg:(g + 1) * mg, g * ng:(g + 1) * ng] = rng.standard_normal(block)
    for matrix in (dense, dense + 1e-3 * (rng.random(dense.shape) < 0.05)):
        layer = LayerInput("c", "conv2d", "Conv2d", "relu", True, 0.0, "", (), (groups * mg, ng, 1, 1), matrix,
                           np.zeros(groups * mg), matrix.size, conv_geometry={"groups": groups})
        got = kernel_singular_values(layer)
        want = np.linalg.svd(matrix, compute_uv=False)
        assert got.shape == want.shape and np.allclose(got, want, rtol=1e-12, atol=1e-12 * want[0])


@pytest.mark.parametrize("after", [nn.ReLU, nn.Identity, nn.SiLU])
def test_a_grouped_convolution_has_one_kernel_matrix_whatever_follows_it(after):
    """The row of a depthwise / grouped convolution measures the operator's block-diagonal kernel matrix
    (MATH.md section 9) whether a ReLU, nothing or another activation follows: its spectrum is NumPy's SVD of
    that dense matrix, ``sigma_0`` stays below the layer's operator norm, and ``Monitor`` records the same."""
    torch.manual_seed(0)
    for groups in (8, 2):
        conv = nn.Conv2d(8, 8, 3, padding=1, groups=groups)
        model = nn.Sequential(conv, after(), nn.Flatten(), nn.Linear(8 * 6 * 6, 3)).eval()
        x, y = torch.randn(40, 8, 6, 6), torch.randint(0, 3, (40,))
        row = analyze(model, x, y, relu_bounds=False, progress=False).iloc[0]
        w = conv.weight.detach().double().numpy()
        dense = np.zeros((8, 8, 3, 3))
        per = 8 // groups
        for g in range(groups):
            dense[g * per:(g + 1) * per, g * (8 // groups):(g + 1) * (8 // groups)] = w[g * per:(g + 1) * per]
        want = np.linalg.svd(dense.reshape(8, -1), compute_uv=False)
        assert row["matrix_shape"] == (8, 72) and row["rank"] == 8
        assert row["sigma_0"] == pytest.approx(want[0], rel=1e-6)
        assert row["sigma_0"] <= row["operator_norm"] * (1 + 1e-12)
        monitor = Monitor(model, x, y, layers=["0"])
        monitor.measure()
        h = monitor.history.to_pandas()
        top = h[(h.layer == "0") & (h.quantity == "singular_value") & (h.k == 0)]["value"]
        assert float(top.iloc[0]) == pytest.approx(want[0], rel=1e-6)


def test_one_svd_per_bounded_layer_shared_and_freed(monkeypatch):
    """Each bounded layer's ``W`` is decomposed once (``relusv.WeightSVD``) for its spectrum and both groups'
    curves, every curve gets it, and every one is closed when the table is done."""
    import relusv
    import relusv.layer_table as lt

    made, given = [], []

    class Tracked(relusv.WeightSVD):
        def __init__(self, w, vectors=None, tolerance=0.0):
            super().__init__(w, vectors, tolerance)
            made.append(self)

    engine = relusv.relu_singular_values

    def recording(*args, **options):
        given.append(options.get("weight_svd"))
        return engine(*args, **options)

    monkeypatch.setattr(lt, "WeightSVD", Tracked)
    monkeypatch.setattr(relusv, "relu_singular_values", recording)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 6 * 6, 8),
                          nn.ReLU(), nn.Linear(8, 3)).eval()
    x, y = torch.randn(120, 2, 6, 6), torch.randint(0, 3, (120,))
    table = analyze(model, x, y, samples=SAMPLES, repeats=REPEATS, seed=SEED, progress=False)
    assert (table["relu_bounds"] == "computed").sum() == 2
    assert len(made) == 2 and len(given) == 4 and all(any(g is m for m in made) for g in given)
    assert all(svd.closed for svd in made)
    linear = next(svd for svd in made if svd.shape == (8, 216))
    assert table.set_index("layer").loc["3", "sigma_0"] == linear.values[0]   # the linear layer's spectrum from it


def test_a_wide_layer_over_few_points_keeps_the_vectors_its_curves_read(monkeypatch):
    """Above ``LEADING_SVD_WORK`` a linear layer whose groups have fewer points than half of ``min(m, n)``
    shares an SVD with the vectors of its largest ``points`` values only (its curves' ``k`` stay below
    ``rank(X W^T) <= points``); the spectrum columns are unchanged to rounding, the curves agree with those
    of the full SVD (the same candidates from factors equal to rounding; the survey's fits start from them)."""
    import relusv
    import relusv.layer_table as lt

    made = []

    class Tracked(relusv.WeightSVD):
        def __init__(self, w, vectors=None, tolerance=0.0):
            super().__init__(w, vectors, tolerance)
            made.append(self)

    monkeypatch.setattr(lt, "WeightSVD", Tracked)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(300, 80), nn.ReLU(), nn.Linear(80, 3)).eval()
    x, y = torch.randn(60, 300), torch.randint(0, 3, (60,))
    options = dict(samples=SAMPLES, repeats=REPEATS, seed=SEED, progress=False)
    full = analyze(model, x, y, **options)
    assert [svd.vectors for svd in made] == [80]
    made.clear()
    monkeypatch.setattr(lt, "LEADING_SVD_WORK", 0.0)
    leading = analyze(model, x, y, **options)
    sizes = [len(full.attrs["subsets"][g][0]) for g in ("correct", "incorrect")]
    assert [svd.vectors for svd in made] == [max(sizes)] and max(sizes) < 40
    for column in ("sigma_0", "sigma_min", "stable_rank", "rank"):
        np.testing.assert_allclose(leading[column].to_numpy(float), full[column].to_numpy(float), rtol=1e-12)
    for g in ("correct", "incorrect"):
        a = np.asarray(leading.attrs["details"]["0"]["relu_bounds"][g]["bound"])
        b = np.asarray(full.attrs["details"]["0"]["relu_bounds"][g]["bound"])
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_the_kept_activations_are_checked_against_the_memory_limit():
    """The rows ``analyze`` keeps per site are allocated once per site, each allocation checked with those
    before it against ``relusv.memory_limit()``: a limit below them refuses the call, naming the site."""
    from relusv.errors import MemoryLimitError

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 16 * 16, 3)).eval()
    x, y = torch.randn(200, 3, 16, 16), torch.randint(0, 3, (200,))
    relusv.set_memory_limit(3_000_000)     # the first conv's 4,096 outputs of 200 points take 3.3 MB in float32
    try:
        with pytest.raises(MemoryLimitError, match=r"the activations kept for analysis \(at \('0', 'output'\)\)"):
            analyze(model, x, y, relu_bounds=False, progress=False)
    finally:
        relusv.set_memory_limit(None)
    table = analyze(model, x, y, relu_bounds=False, progress=False)
    assert table.attrs["points"] == 200 and table.loc[0, "dimension"] == 4096


def test_a_module_run_twice_per_point_inside_an_opaque_module_is_skipped():
    """A module called twice in one forward pass where tracing cannot see it would give two rows per point:
    the first pass counts its calls and the table lists it as skipped with the reason."""

    class Opaque(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            if x.sum() > -1e9:   # data-dependent control flow: not traceable
                x = torch.relu(self.fc(torch.relu(self.fc(x))))
            return x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp, self.body, self.out = nn.Linear(4, 6), Opaque(), nn.Linear(6, 2)

        def forward(self, x):
            return self.out(self.body(torch.relu(self.inp(x))))

    torch.manual_seed(0)
    model = Model().eval()
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    with pytest.warns(UserWarning, match="does not trace"):
        table = analyze(model, x, y, progress=False)
    assert list(table["layer"]) == ["inp", "out"]
    assert table.attrs["discovery"]["skipped"]["body.fc"].startswith("ran 2 times per forward pass")
    # Named explicitly, it is refused where its rows are kept, naming it and what to do.
    with pytest.raises(relusv.InvalidInputError, match=r"\('body.fc', 'input'\) was computed more than once"):
        from relusv.torch._rows import RowStore

        store = RowStore(2)
        store.keep(("body.fc", "input"), torch.zeros(2, 6))
        store.keep(("body.fc", "input"), torch.zeros(2, 6))


def test_row_stores_share_one_memory_budget():
    from relusv.errors import MemoryLimitError
    from relusv.torch._rows import RowStore

    first = RowStore(10)
    second = RowStore(10, first.spent)
    relusv.set_memory_limit(1000)
    try:
        first.keep("a", torch.zeros(10, 6, dtype=torch.float64))      # 480 bytes
        second.keep("b", torch.zeros(4, 6, dtype=torch.float64))      # another 480
        with pytest.raises(MemoryLimitError, match=r"at c\) would take 1,440 bytes"):
            second.keep("c", torch.zeros(4, 6, dtype=torch.float64))
    finally:
        relusv.set_memory_limit(None)
    second.keep("b", torch.ones(6, 6, dtype=torch.float64))
    assert second.result()["b"].shape == (10, 6) and second.result()["b"][4:].sum() == 36
    first.keep("h", torch.ones(3, 2, dtype=torch.bfloat16))
    assert first.result()["h"].dtype == np.float32 and first.result()["h"].shape == (3, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spectra_to_the_accuracy_of_the_weights_own_precision(dtype):
    """float32 weights: every singular value within float32's ``eps * sigma_0`` of NumPy's float64 SVD (the
    engine may take them from the Gram matrix); float64 weights: the SVD's values (bit for bit those of
    ``relusv.singular_values`` without bounds)."""
    import relusv

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(300, 60), nn.ReLU(), nn.Linear(60, 3)).to(dtype).eval()
    x, y = torch.randn(80, 300, dtype=dtype), torch.randint(0, 3, (80,))
    for bounds in (False, True):
        table = analyze(model, x, y, samples=SAMPLES, repeats=REPEATS, seed=SEED, relu_bounds=bounds,
                        progress=False)
        values = np.asarray(table.attrs["details"]["0"]["singular_values"])
        w = model[0].weight.detach().double().numpy()
        if dtype == torch.float32:
            expected = np.linalg.svd(w, compute_uv=False)
            np.testing.assert_allclose(values, expected, rtol=0, atol=np.finfo(np.float32).eps * expected[0])
        elif not bounds:   # the SVD's values (relu_bounds=True reads them from the layer's shared thin SVD)
            np.testing.assert_array_equal(values, relusv.singular_values(w))
        else:
            np.testing.assert_allclose(values, relusv.singular_values(w), rtol=1e-13)
