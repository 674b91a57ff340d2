"""relusv.torch.Monitor: equal-size groups, GMW against relusv.gmw on hand-captured activations.

Oracles: activations are captured by hand (layer by layer with the model's own
modules), the subsets are checked against the hand-made predictions, and
every width is recomputed with ``relusv.gmw``; singular values against NumPy;
the k = 0 ReLU bound against its closed form (MATH.md section 2).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import relusv  # noqa: E402
from relusv.torch import DoubleLinear, History, Monitor, equal_size_subsets  # noqa: E402
from torch import nn  # noqa: E402

SAMPLES, SEED, TRIM = 60, 7, 0.1


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 0.8).long()
    return x, y


@pytest.fixture(scope="module")
def trained():
    """A 12-24-16-3 MLP (second layer double) trained for well under a second."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), DoubleLinear(24, 16, 6, seed=1), nn.ReLU(), nn.Linear(16, 3))
    x, y = make_data(2000, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    probe_x, probe_y = make_data(700, 1)
    return model, probe_x, probe_y


def hand_activations(model, x):
    """{(layer, site): activations} by running the Sequential's modules one by one."""
    out = {}
    with torch.no_grad():
        h = x
        for name, module in model.named_children():
            if isinstance(module, (nn.Linear, DoubleLinear)) and name in ("0", "2"):
                out[(name, "input")] = h.numpy().copy()
                h = module(h)
                out[(name, "output")] = torch.relu(h).numpy().copy()
            else:
                h = module(h)
    return out, h.argmax(1)


def check_against_hand(monitor, model, x, y, tolerance):
    acts, predicted = hand_activations(model, x)
    correct = (predicted == y).numpy()
    m = monitor.last
    np.testing.assert_array_equal(m.correct, correct)
    size = min(correct.sum(), (~correct).sum())
    assert 0 < size < len(y)
    for g, want in (("correct", True), ("incorrect", False)):
        assert m.subsets[g], g
        for idx in m.subsets[g]:
            assert len(idx) == size                     # equal-size groups
            assert len(np.unique(idx)) == size
            assert (correct[idx] == want).all()         # each subset lies in its group
    compared = 0
    for (layer, site), a in acts.items():
        for g in ("correct", "incorrect"):
            got = m.widths[(layer, site, g)]
            assert len(got) == len(m.subsets[g])
            for r, idx in enumerate(m.subsets[g]):
                # The products with the directions are formed in float64 (MATH.md section 11).
                want = relusv.gmw(a[idx].astype(np.float64), samples=SAMPLES, seed=SEED, trim=TRIM)
                assert got[r] == pytest.approx(want, rel=tolerance, abs=0)
                compared += 1
            rec = monitor.history.select(layer=layer, site=site, group=g, quantity="gmw")[-1]
            assert rec["value"] == pytest.approx(np.mean(got), rel=1e-12)
            assert rec["group_size"] == size
            assert rec["spread"] == pytest.approx(np.std(got, ddof=1) if len(got) > 1 else 0.0, rel=1e-12)
    assert compared >= 4 * 2 * 2


def test_gmw_equals_relusv_gmw_on_hand_captured_activations(trained):
    model, x, y = trained
    # One probe batch: the monitor's forward is the same computation as the hand one, value for value.
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, trim=TRIM, repeats=3, batch_size=len(x),
                      singular_values=False)
    monitor.measure()
    check_against_hand(monitor, model, x, y, tolerance=1e-12)


def test_streaming_in_small_batches_matches_hand_capture(trained):
    model, x, y = trained
    # Batches of 64 change float32 rounding inside the matrix products only: relative 1e-5 covers it
    # (activations agree to ~1e-7, widths are sums of ~10 such terms).
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, trim=TRIM, repeats=3, batch_size=64,
                      singular_values=False)
    monitor.measure()
    check_against_hand(monitor, model, x, y, tolerance=1e-5)


def test_numpy_memmap_and_dataset_probes_give_the_same_records(trained, tmp_path):
    model, x, y = trained
    kwargs = dict(samples=SAMPLES, seed=SEED, repeats=2, batch_size=100, singular_values=False)
    reference = Monitor(model, x, y, **kwargs).measure()
    path = tmp_path / "probe.npy"
    np.save(path, x.numpy())
    mapped = np.load(path, mmap_mode="r")
    from_memmap = Monitor(model, mapped, y.numpy(), **kwargs).measure()
    dataset = torch.utils.data.TensorDataset(x, y)
    from_dataset = Monitor(model, dataset, **kwargs).measure()
    assert [r["value"] for r in from_memmap] == [r["value"] for r in reference]
    assert [r["value"] for r in from_dataset] == [r["value"] for r in reference]


def test_model_mode_gradients_parameters_and_rng_untouched():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Dropout(0.5), nn.Linear(20, 20), nn.ReLU(),
                          nn.Linear(20, 3))
    x, y = make_data(300, 2)
    model.train()
    model[2].eval()                       # a mixed state must come back exactly
    nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    params = [p.detach().clone() for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    seen_modes = []
    handle = model[0].register_forward_hook(lambda m, i, o: seen_modes.append(m.training))
    rng = torch.get_rng_state()
    monitor = Monitor(model, x, y, samples=20, repeats=2)
    first = monitor.measure()
    handle.remove()
    assert seen_modes and not any(seen_modes)           # the probe ran in eval mode
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert all(torch.equal(p.detach(), q) for p, q in zip(model.parameters(), params))
    assert torch.equal(torch.get_rng_state(), rng)
    # In eval mode the dropout is off: a second measurement repeats the first exactly.
    second = monitor.measure()
    assert [r["value"] for r in second] == [r["value"] for r in first]
    # eval_mode=False keeps training mode during the probe, and still restores everything.
    Monitor(model, x, y, samples=20, repeats=2, eval_mode=False).measure()
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_singular_values_and_relu_bounds_against_oracles(trained):
    model, x, y = trained
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, repeats=2, relu_bounds=True, relu_ks=(0, 1, 2),
                      relu_options={"max_steps": 60})
    records = monitor.measure()
    for name in ("0", "2"):
        w = model.get_submodule(name).weight.detach().double().numpy()
        b = model.get_submodule(name).bias.detach().double().numpy()
        sigma = np.linalg.svd(w, compute_uv=False)
        got = [r["value"] for r in records.select(layer=name, quantity="singular_value")]
        np.testing.assert_allclose(got, sigma, rtol=1e-5, atol=1e-6)
        [norm] = records.select(layer=name, quantity="operator_norm")
        assert norm["note"] == "exact" and norm["value"] == pytest.approx(sigma[0], rel=1e-5)
        acts, _ = hand_activations(model, x)
        for g in ("correct", "incorrect"):
            idx = monitor.last.subsets[g][0]
            inputs = acts[(name, "input")][idx].astype(np.float64)
            bounds = {r["k"]: r["value"] for r in records.select(layer=name, group=g, quantity="relu_bound")}
            assert sorted(bounds) == [0, 1, 2]
            # k = 0 exactly: max_x ||ReLU(Wx+b) - ReLU(b)||.
            exact = np.linalg.norm(np.maximum(inputs @ w.T + b, 0) - np.maximum(b, 0), axis=1).max()
            assert bounds[0] == pytest.approx(exact, rel=1e-5)
            # Chain of MATH.md section 2: the bound never exceeds sigma_k * max ||x||.
            radius = np.linalg.norm(inputs, axis=1).max()
            for k in (1, 2):
                assert bounds[k] <= sigma[k] * radius * (1 + 1e-5)
                assert bounds[k] <= bounds[k - 1] * (1 + 1e-9)


class SmallCNN(nn.Module):
    """Two 3 x 3 convolutions on 1 x 6 x 6 images (circular, then zero padding) and a linear read-out."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 3, 3, padding=1, padding_mode="circular")
        self.c2 = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


def dense_operator_norm(conv: nn.Module, shape) -> float:
    """Oracle: the top singular value of the convolution's matrix, built column by column from the module."""
    n = int(np.prod(shape))
    with torch.no_grad():
        basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
        columns = torch.nn.functional.conv2d(
            torch.nn.functional.pad(basis, (1, 1, 1, 1), mode=conv.padding_mode if conv.padding_mode != "zeros"
                                    else "constant"), conv.weight.double())
    return float(np.linalg.svd(columns.reshape(n, -1).numpy(), compute_uv=False)[0])


def test_convolution_operator_norms_against_the_dense_operator():
    torch.manual_seed(3)
    model = SmallCNN()
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(80, 1, 6, 6, generator=g), torch.randint(0, 3, (80,), generator=g)
    records = Monitor(model, x, y, samples=20, repeats=1, seed=SEED).measure()
    norms = {r["layer"]: r for r in records.select(quantity="operator_norm")}
    assert sorted(norms) == ["c1", "c2"]   # the layers before a ReLU
    # Circular padding, stride 1: the exact value (to float32 rounding of the weights).
    assert norms["c1"]["note"] == "exact (circular)"
    assert norms["c1"]["value"] == pytest.approx(dense_operator_norm(model.c1, (1, 6, 6)), rel=1e-5)
    # Zero padding: a certified bracket (small layer: dense matrix with a Cholesky certificate).
    exact = dense_operator_norm(model.c2, (3, 6, 6))
    [lower] = records.select(layer="c2", quantity="operator_norm_lower")
    assert norms["c2"]["note"].startswith("bracket (dense, Cholesky certificate), gap ")
    assert lower["note"] == norms["c2"]["note"]
    assert lower["value"] <= exact <= norms["c2"]["value"] <= exact * (1 + 1e-6)
    # ||A|| >= sigma_0(K_mat) (the top right singular vector as one patch inside the image) and
    # ||A|| <= sqrt(kh kw) sigma_0(K_mat) (every pixel lies in at most kh kw patches; MATH.md section 9).
    sigma0 = [r["value"] for r in records.select(layer="c2", quantity="singular_value")][0]
    assert sigma0 <= norms["c2"]["value"] * (1 + 1e-5) <= 3 * sigma0 * (1 + 1e-5)


def test_triggers_every_steps_and_epochs(trained):
    model, x, y = trained
    monitor = Monitor(model, x[:200], y[:200], samples=10, repeats=1, every_steps=3, singular_values=False)
    fired = [monitor.step() is not None for _ in range(7)]
    assert fired == [False, False, True, False, False, True, False]
    assert sorted({r["step"] for r in monitor.history}) == [3, 6]
    by_epoch = Monitor(model, x[:200], y[:200], samples=10, repeats=1, every_epochs=2, singular_values=False)
    for _ in range(5):
        by_epoch.epoch_end()
    assert sorted({r["epoch"] for r in by_epoch.history}) == [2, 4]
    assert sorted({r["measurement"] for r in by_epoch.history}) == [0, 1]


def test_history_round_trips_through_csv_and_json(trained, tmp_path):
    model, x, y = trained
    monitor = Monitor(model, x, y, samples=10, repeats=2)
    monitor.measure()
    for back in (History.from_csv(monitor.history.to_csv(tmp_path / "h.csv")),
                 History.from_json(monitor.history.to_json(tmp_path / "h.json"))):
        assert len(back) == len(monitor.history)
        for a, b in zip(monitor.history, back):
            for key, value in a.items():
                if value is None:
                    assert isinstance(b[key], float) and math.isnan(b[key])
                elif isinstance(value, float):
                    assert b[key] == pytest.approx(value, rel=1e-15)
                else:
                    assert b[key] == value


def test_a_group_too_small_gives_nan_not_a_crash():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    x, _ = make_data(100, 4)
    with torch.no_grad():
        y = model(x).argmax(1)              # every point correct
    records = Monitor(model, x, y, samples=10).measure()
    gmw = records.select(quantity="gmw")
    assert gmw and all(math.isnan(r["value"]) for r in gmw)
    assert all(r["note"].startswith("all 100 probe points are classified correctly") for r in gmw)
    assert all(r["accuracy"] == 1.0 for r in records)


def test_equal_size_subsets_are_seeded_uniform_and_capped():
    rng = np.random.default_rng(0)
    correct = rng.random(500) < 0.8
    n_bad = int((~correct).sum())
    a = equal_size_subsets(correct, repeats=4, seed=5)
    again = equal_size_subsets(correct, repeats=4, seed=5)
    assert all(np.array_equal(p, q) for g in a for p, q in zip(a[g], again[g]))
    # The smaller group is used whole, in every repeat.
    assert len(a["incorrect"]) == 4 and all(np.array_equal(s, np.flatnonzero(~correct)) for s in a["incorrect"])
    assert len(a["correct"]) == 4 and all(len(s) == n_bad and correct[s].all() for s in a["correct"])
    b = equal_size_subsets(correct, repeats=4, seed=6)
    assert not np.array_equal(a["correct"][0], b["correct"][0])
    capped = equal_size_subsets(correct, size=30, repeats=2, seed=0)
    assert all(len(s) == 30 for g in capped for s in capped[g]) and len(capped["incorrect"]) == 2
    assert equal_size_subsets(np.ones(10, bool)) == {"correct": [], "incorrect": []}
    # The cap: each group enters with at most max_group_size points (one seeded pool for every repeat).
    pooled = equal_size_subsets(correct, repeats=6, seed=2, max_group_size=40)
    assert all(len(s) == 40 for g in pooled for s in pooled[g])
    assert len(np.unique(np.concatenate(pooled["correct"]))) == 40 and \
        all(np.array_equal(s, pooled["correct"][0]) for s in pooled["correct"])
    # Inclusion frequencies: every correct point is chosen with probability n_bad / n_good.
    many = equal_size_subsets(correct, repeats=400, seed=1)["correct"]
    counts = np.bincount(np.concatenate(many), minlength=500)[correct]
    p = n_bad / correct.sum()
    sd = math.sqrt(400 * p * (1 - p))
    assert np.abs(counts - 400 * p).max() < 5 * sd


def test_bad_arguments_raise_clear_errors(trained):
    model, x, y = trained
    with pytest.raises(ValueError, match="inputs but"):
        Monitor(model, x, y[:10])
    with pytest.raises(ValueError, match="no submodule named"):
        Monitor(model, x, y, layers=["nope"])
    with pytest.raises(ValueError, match="followed by a ReLU"):
        Monitor(nn.Sequential(nn.Linear(3, 2)), x, y)
    with pytest.raises(ValueError, match="every_steps"):
        Monitor(model, x, y, every_steps=0)
    with pytest.raises(TypeError, match="nn.Module"):
        Monitor(lambda t: t, x, y)


class Doubling(nn.Module):
    def forward(self, x):
        return 2 * x


def test_a_layer_input_that_is_not_the_previous_relu_output_is_measured_itself():
    # Linear, ReLU, x2, Linear, ReLU, Linear: the second layer's input is twice the first layer's
    # ReLU output, so its widths must be twice those (w(lK) = l w(K), MATH.md section 4), and equal
    # relusv.gmw on inputs captured by a hook of the test's own.
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), Doubling(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = make_data(400, 6)
    seen = []
    handle = model[3].register_forward_hook(lambda m, i, o: seen.append(i[0].detach().numpy().copy()))
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, trim=0, repeats=2, batch_size=len(x),
                      singular_values=False)
    monitor.measure()
    handle.remove()
    captured = seen[-1]
    for g in ("correct", "incorrect"):
        ins = monitor.last.widths[("3", "input", g)]
        outs = monitor.last.widths[("0", "output", g)]
        np.testing.assert_allclose(ins, 2 * np.asarray(outs), rtol=1e-6)
        for r, idx in enumerate(monitor.last.subsets[g]):
            want = relusv.gmw(captured[idx].astype(np.float64), samples=SAMPLES, seed=SEED, trim=0)
            assert ins[r] == pytest.approx(want, rel=1e-12)


def test_operator_norm_brackets_stay_certified_when_warm_started():
    """A layer too large for the dense route gets a Lanczos bracket; after a weight change the next
    measurement starts from the previous vector and its bracket still holds (oracle: dense SVD)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 12 * 12, 3))
    g = torch.Generator().manual_seed(7)
    x, y = torch.randn(60, 1, 12, 12, generator=g), torch.randint(0, 3, (60,), generator=g)
    monitor = Monitor(model, x, y, samples=10, repeats=1, seed=SEED)
    for change in (0.0, 0.05):
        with torch.no_grad():
            model[2].weight.add_(change * torch.randn(model[2].weight.shape, generator=g))
        records = monitor.measure()
        [upper] = records.select(layer="2", quantity="operator_norm")
        [lower] = records.select(layer="2", quantity="operator_norm_lower")
        assert upper["note"].startswith("bracket (Lanczos, circular torus), gap ")
        exact = dense_operator_norm(model[2], (8, 12, 12))
        assert lower["value"] <= exact <= upper["value"]
        # cold: Lanczos to a Ritz residual of 1e-3; warm after a large change: the short warm budget
        assert lower["value"] == pytest.approx(exact, rel=1e-3 if change == 0 else 1e-2)


class ClampAbove(nn.Module):
    """``min(x, c)``: the identity on batches whose values stay below ``c`` (an input tap equal to the previous
    ReLU output on some batches only)."""

    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def forward(self, x):
        return torch.clamp(x, max=self.c)


@pytest.mark.parametrize("probe_points", [300, 1300])   # 1,300 points: more than the pool of 2 x 500
def test_one_pass_and_two_passes_give_the_same_records(probe_points, monkeypatch):
    import relusv.torch.monitor as monitor_module

    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), ClampAbove(1.2), nn.Linear(10, 8), nn.ReLU(),
                          nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = make_data(probe_points, 8)
    x[:100] *= 0.05   # the first batch stays below the clamp: layer 3's input equals layer 0's output there

    def run(one_pass_bytes):
        monkeypatch.setattr(monitor_module, "ONE_PASS_BYTES", one_pass_bytes)
        monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, trim=TRIM, repeats=3, batch_size=100)
        assert monitor._one_pass() == (one_pass_bytes > 0)
        monitor.measure()
        return monitor

    one, two = run(1 << 40), run(0)
    assert len(one.history) == len(two.history) > 0
    for a, b in zip(one.history, two.history):
        assert a.keys() == b.keys()
        for key in a:
            same = a[key] == b[key] or (isinstance(a[key], float) and math.isnan(a[key]) and math.isnan(b[key]))
            assert same, (key, a, b)
    # The clamped input is measured itself (not an alias), and differs from layer 0's output.
    assert one.last.widths[("3", "input", "correct")] != one.last.widths[("0", "output", "correct")]
    # Layer 5's input is layer 3's ReLU output on every batch: an alias, recorded under both names.
    assert one.last.widths[("5", "input", "correct")] == one.last.widths[("3", "output", "correct")]


def test_spectra_of_unchanged_layers_are_computed_once(monkeypatch):
    # A frozen first layer (fine-tuning): its singular values and operator norm are computed at the first
    # measurement only; the trained layers' anew at each. The records are those of a fresh computation.
    import relusv as relusv_module

    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    model[0].requires_grad_(False)
    x, y = make_data(300, 9)
    calls = []
    real = relusv_module.singular_values
    monkeypatch.setattr(relusv_module, "singular_values", lambda w: calls.append(np.array(w).shape) or real(w))
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, repeats=2)
    monitor.measure()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    monitor.measure()
    assert calls == [(10, 12), (8, 10), (8, 10)]
    for name, layer in (("0", model[0]), ("2", model[2])):
        got = [r["value"] for r in monitor.history.select(layer=name, quantity="singular_value", measurement=1)]
        np.testing.assert_array_equal(got, real(layer.weight.detach().numpy()))
        norm = monitor.history.select(layer=name, quantity="operator_norm", measurement=1)[0]["value"]
        assert norm == pytest.approx(np.linalg.norm(layer.weight.detach().numpy().astype(np.float64), 2), rel=1e-6)


def test_an_interrupt_during_the_norms_drops_the_spectra_not_yet_started(monkeypatch):
    # Singular values run on a worker thread beside the operator norms; Ctrl-C (here raised by the first
    # norm) must not wait for the queued layers' spectra to be computed first.
    import time

    import relusv as relusv_module
    import relusv.torch.monitor as monitor_module

    torch.manual_seed(6)
    layers = []
    for _ in range(6):
        layers += [nn.Linear(12, 12), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(12, 3))
    x, y = make_data(200, 10)
    started = []
    real = relusv_module.singular_values

    def slow(w):
        started.append(1)
        time.sleep(0.3)
        return real(w)

    def interrupted(self, layer, sigma_0, shape):
        raise KeyboardInterrupt

    monkeypatch.setattr(relusv_module, "singular_values", slow)
    monkeypatch.setattr(monitor_module.Monitor, "_operator_norm", interrupted)
    monitor = Monitor(model, x, y, samples=SAMPLES, seed=SEED, repeats=2)
    with pytest.raises(KeyboardInterrupt):
        monitor.measure()
    assert len(started) <= 2   # the running one (a linear layer's norm waits for it), at most one more
