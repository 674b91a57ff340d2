"""harmonic_prune (MATH.md section 8): one rank per iteration, criteria and stops, honest accuracy.

Oracles: accuracies are recomputed by hand (argmax of the model's logits on
the held-out set), candidate truncations with NumPy's SVD, parameter counts
from the layer shapes.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import DoubleLinear, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] + x[:, 3] > 1).long()
    return x, y


def train(model, x, y, steps=60):
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x, y = make_data(1500, 0)
    train(model, x, y)
    x_val, y_val = make_data(400, 1)
    return model, x, y, x_val, y_val


def hand_accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def truncated(w: np.ndarray, k: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vt[:k]


def check_ranks_step_down(result, start):
    history = result.history
    assert history[0]["ranks"] == start and history[0]["iteration"] == 0
    for before, after in zip(history, history[1:]):
        assert after["iteration"] == before["iteration"] + 1
        drops = [a - b for a, b in zip(before["ranks"], after["ranks"])]
        assert sorted(drops) == [0] * (len(drops) - 1) + [1]          # exactly one rank, one layer
        assert result.layers[drops.index(1)] == after["layer"]


def test_one_rank_per_iteration_honest_accuracy_and_counts(setup):
    model, _, _, x_val, y_val = setup
    original = [p.detach().clone() for p in model.parameters()]
    result = harmonic_prune(model, x_val, y_val, max_iterations=6, progress=False)
    assert result.layers == ["0", "2"] and result.stop_reason == "max_iterations"
    assert len(result.history) == 7
    check_ranks_step_down(result, [8, 6])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), original))   # the input is not modified
    last = result.history[-1]
    assert last["accuracy"] == pytest.approx(hand_accuracy(result.model, x_val, y_val), abs=1e-12)
    assert result.history[0]["accuracy"] == pytest.approx(hand_accuracy(model, x_val, y_val), abs=1e-12)
    counts = {"0": (10, 8), "2": (8, 6)}
    expected = 6 * 3 + 3
    for name, rank in zip(result.layers, last["ranks"]):
        module = result.model.get_submodule(name)
        n, m = counts[name]
        if isinstance(module, DoubleLinear):
            assert module.rank == rank
            expected += rank * (n + m) + m
            product = module.weight1.detach().double() @ module.weight2.detach().double()
            assert np.linalg.matrix_rank(product.numpy()) == rank
        else:
            assert rank == min(n, m)
            expected += n * m + m
    assert last["parameters"] == expected == sum(p.numel() for p in result.model.parameters())


def test_the_first_cut_is_the_best_candidate(setup):
    model, _, _, x_val, y_val = setup
    result = harmonic_prune(model, x_val, y_val, max_iterations=1, progress=False)
    candidates = {}
    for name in ("0", "2"):
        trial = __import__("copy").deepcopy(model)
        layer = trial.get_submodule(name)
        w = layer.weight.detach().double().numpy()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(truncated(w, min(w.shape) - 1)))
        candidates[name] = hand_accuracy(trial, x_val, y_val)
    first = result.history[1]
    assert first["accuracy_before_retraining"] == pytest.approx(max(candidates.values()), abs=1e-12)
    assert candidates[first["layer"]] == pytest.approx(max(candidates.values()), abs=1e-12)
    cut = result.model.get_submodule(first["layer"])
    w = model.get_submodule(first["layer"]).weight.detach().double().numpy()
    np.testing.assert_allclose(cut.weight.detach().double().numpy(), truncated(w, min(w.shape) - 1), atol=1e-5)


def test_retraining_every_t_th_iteration_and_below_rank(setup):
    model, x, y, x_val, y_val = setup
    calls = []

    def retrain(m):
        calls.append(sum(getattr(m.get_submodule(n), "rank", 0) for n in ("0", "2")))
        train(m, x[:300], y[:300], steps=3)

    result = harmonic_prune(model, x_val, y_val, retrain=retrain, retrain_drop=None, retrain_every=3,
                            max_iterations=7, progress=False)
    retrained = [r["iteration"] for r in result.history if r["retrained"]]
    assert retrained == [3, 6] and len(calls) == 2
    check_ranks_step_down(result, [8, 6])
    # Retraining keeps the factors: ranks stay bounded, and the recorded accuracy is the retrained one.
    assert result.history[-1]["accuracy"] == pytest.approx(hand_accuracy(result.model, x_val, y_val), abs=1e-12)
    low = harmonic_prune(model, x_val, y_val, retrain=retrain, retrain_drop=None, retrain_below_rank=6,
                         max_iterations=6, progress=False)
    for r in low.history[1:]:
        cut_rank = r["ranks"][low.layers.index(r["layer"])]
        assert r["retrained"] == (cut_rank < 6)
        assert r["retrain_reasons"] == (["low rank"] if cut_rank < 6 else [])


def test_retraining_on_accuracy_drop_from_a_data_loader(setup):
    model, x, y, x_val, y_val = setup
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=128, shuffle=False)
    result = harmonic_prune(model, x_val, y_val, retrain=loader, retrain_batches=5, retrain_drop=0.01,
                            max_iterations=8, progress=False)
    initial = result.initial_accuracy
    for r in result.history[1:]:
        dropped = initial - r["accuracy_before_retraining"] > 0.01
        assert r["retrained"] == dropped
        if not r["retrained"]:
            assert r["accuracy"] == r["accuracy_before_retraining"]
    check_ranks_step_down(result, [8, 6])
    for name, rank in zip(result.layers, result.history[-1]["ranks"]):
        module = result.model.get_submodule(name)
        assert not isinstance(module, DoubleLinear) or module.rank == rank
    assert all(p.grad is None for p in result.model.parameters())


def test_parameter_budget_stop(setup):
    model, _, _, x_val, y_val = setup
    budget = 150
    result = harmonic_prune(model, x_val, y_val, max_parameters=budget, progress=False)
    assert result.stop_reason == "parameter budget"
    counts = [r["parameters"] for r in result.history]
    assert counts[-1] <= budget and all(c > budget for c in counts[:-1])


def test_accuracy_floor_undoes_the_iteration_that_breaks_it(setup):
    model, _, _, x_val, y_val = setup
    floor = 0.9 * harmonic_prune(model, x_val, y_val, max_iterations=0, progress=False).initial_accuracy
    result = harmonic_prune(model, x_val, y_val, min_accuracy=floor, progress=False)
    assert result.stop_reason == "accuracy floor"
    accepted = [r for r in result.history if r["accepted"]]
    assert all(r["accuracy"] >= floor for r in accepted)
    assert not result.history[-1]["accepted"] and result.history[-1]["accuracy"] < floor
    assert hand_accuracy(result.model, x_val, y_val) == pytest.approx(accepted[-1]["accuracy"], abs=1e-12)
    for name, rank in zip(result.layers, accepted[-1]["ranks"]):
        module = result.model.get_submodule(name)
        assert (module.rank if isinstance(module, DoubleLinear) else min(module.weight.shape)) == rank


def test_no_stop_criterion_prunes_to_min_rank(setup):
    model, _, _, x_val, y_val = setup
    seen = []
    result = harmonic_prune(model, x_val, y_val, min_rank=2, progress=lambda done, total: seen.append((done, total)))
    assert result.stop_reason == "every layer at min_rank"
    assert result.history[-1]["ranks"] == [2, 2]
    assert len(result.history) == 1 + (8 - 2) + (6 - 2)
    assert seen[-1] == (10, 10)
    check_ranks_step_down(result, [8, 6])


def test_bad_arguments_raise_clear_errors(setup):
    model, _, _, x_val, y_val = setup
    with pytest.raises(ValueError, match="min_rank"):
        harmonic_prune(model, x_val, y_val, min_rank=0)
    with pytest.raises(ValueError, match="no submodule"):
        harmonic_prune(model, x_val, y_val, layers=["9"])
    with pytest.raises(TypeError, match="Linear or DoubleLinear"):
        harmonic_prune(model, x_val, y_val, layers=["1"])
    with pytest.raises(ValueError, match="inputs but"):
        harmonic_prune(model, x_val, y_val[:5])


def test_test_data_is_recorded_and_takes_no_part_in_decisions(setup):
    model, _, _, x_val, y_val = setup
    x_test, y_test = make_data(300, 2)
    plain = harmonic_prune(model, x_val, y_val, max_iterations=4, progress=False)
    tested = harmonic_prune(model, x_val, y_val, max_iterations=4, test_data=(x_test, y_test), progress=False)
    assert [h["layer"] for h in tested.history] == [h["layer"] for h in plain.history]
    assert [h["accuracy"] for h in tested.history] == [h["accuracy"] for h in plain.history]
    assert "test_accuracy" not in plain.history[-1]
    assert tested.history[0]["test_accuracy"] == pytest.approx(hand_accuracy(model, x_test, y_test), abs=1e-12)
    assert tested.history[-1]["test_accuracy"] == pytest.approx(
        hand_accuracy(tested.model, x_test, y_test), abs=1e-12)
