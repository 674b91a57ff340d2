"""harmonic_prune (MATH.md section 8): cuts chosen on the selection set, kept on the stopping set, counts that are true.

Oracles: accuracies are recomputed by hand (argmax of the model's logits), candidate truncations with NumPy's
SVD, parameter counts from the layer shapes with the formula of MATH.md section 7 (``r (m + n) + m`` against
``m n + m``), the selection / stopping halves from a NumPy permutation of the seed.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import relusv

torch = pytest.importorskip("torch")
from conftest import trained  # noqa: E402
from relusv.torch import DoubleLinear, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHAPES = {"0": (8, 10), "2": (6, 8)}         # (m, n) of the two hidden layers


def make_data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).long() + (x[:, 2] + x[:, 3] > 1).long()
    return x, y


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x, y = make_data(1500, 0)
    trained(model, x, y)
    return model, x, y, make_data(400, 1), make_data(400, 2)


def hand_accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def truncated(w: np.ndarray, k: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vt[:k]


def with_weights(model, weights: dict):
    trial = copy.deepcopy(model)
    for name, w in weights.items():
        with torch.no_grad():
            trial.get_submodule(name).weight.copy_(torch.from_numpy(w))
    return trial


def hand_parameters(ranks) -> int:
    """Hidden layers in the cheaper of r (m + n) + m and m n + m, the output layer dense (6 x 3 + 3)."""
    total = 6 * 3 + 3
    for (m, n), r in zip(SHAPES.values(), ranks):
        total += min(r * (m + n), m * n) + m
    return total


def test_single_schedule_cuts_the_best_candidate_on_the_selection_set(setup):
    model, _, _, (x_sel, y_sel), stop = setup
    original = [p.detach().clone() for p in model.parameters()]
    result = harmonic_prune(model, x_sel, y_sel, stop_data=stop, schedule="single", tolerance=1.0,
                            max_iterations=4, progress=False)
    assert result.layers == ["0", "2"] and result.stop_reason == "max_iterations" and len(result.history) == 5
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), original))   # the input is not modified
    weights = {name: model.get_submodule(name).weight.detach().double().numpy() for name in SHAPES}
    ranks = {"0": 8, "2": 6}
    current = copy.deepcopy(model)
    for record in result.history[1:]:
        candidates = {}
        for name in SHAPES:
            w = current.get_submodule(name).weight.detach().double().numpy()
            candidates[name] = hand_accuracy(with_weights(current, {name: truncated(w, ranks[name] - 1)}),
                                             x_sel, y_sel)
        best = max(candidates.values())
        assert record["selection_accuracy_before_retraining"] == pytest.approx(best, abs=1e-12)
        assert candidates[record["layer"]] == pytest.approx(best, abs=1e-12) and record["accepted"]
        ranks[record["layer"]] -= 1
        assert record["ranks"] == [ranks["0"], ranks["2"]] and record["parameters"] == hand_parameters(record["ranks"])
        w = current.get_submodule(record["layer"]).weight.detach().double().numpy()
        current = with_weights(current, {record["layer"]: truncated(w, ranks[record["layer"]])})
    # The returned model computes the truncations: same accuracy on the stopping set as recorded.
    assert hand_accuracy(result.model, *stop) == pytest.approx(result.history[-1]["accuracy"], abs=1e-12)
    assert set(weights) == set(SHAPES)


def test_returned_model_holds_what_is_printed(setup):
    """Every output (history, repr, parameters, relusv.params) states the stored count of the returned model."""
    model, _, _, (x_val, y_val), _ = setup
    result = harmonic_prune(model, x_val, y_val, tolerance=0.05, progress=False)
    stored = sum(p.numel() for p in result.model.parameters())
    last = result.accepted[-1]
    assert result.parameters == last["parameters"] == stored == hand_parameters(last["ranks"])
    assert f"-> {stored:,};" in repr(result)
    counts = relusv.params.model_counts(result.model)
    assert counts.stored.parameters == counts.cheaper.parameters == stored
    for (name, (m, n)), rank in zip(SHAPES.items(), last["ranks"]):
        module = result.model.get_submodule(name)
        # factored exactly below break-even rank m n / (m + n), dense at or above it
        assert isinstance(module, DoubleLinear) == (rank < m * n / (m + n))
        if isinstance(module, DoubleLinear):
            assert module.rank == rank
        w = module.weight.detach().double().numpy()
        assert np.linalg.matrix_rank(w, tol=1e-5 * np.linalg.norm(w, 2)) == rank


@pytest.mark.parametrize("fraction, selected", [(None, 100), (0.5, 200)])
def test_selection_and_stopping_sets_are_disjoint_and_seeded(setup, fraction, selected):
    """Default: a quarter of x_val selects the cuts, the other three quarters decide whether they are kept."""
    model, _, _, (x_val, y_val), _ = setup
    options = {} if fraction is None else {"selection_fraction": fraction}
    result = harmonic_prune(model, x_val, y_val, seed=7, max_iterations=0, progress=False, **options)
    order = np.random.default_rng(7).permutation(len(x_val))
    sel, stop = np.sort(order[:selected]), np.sort(order[selected:])
    assert result.selection_points == selected and result.stopping_points == 400 - selected
    first = result.history[0]
    assert first["selection_accuracy"] == pytest.approx(hand_accuracy(model, x_val[sel], y_val[sel]), abs=1e-12)
    assert first["accuracy"] == pytest.approx(hand_accuracy(model, x_val[stop], y_val[stop]), abs=1e-12)


def test_default_tolerance_is_relative_to_the_start(setup):
    """No floor given: every kept cut stays within 1 pt of the start on the stopping set (no collapse to rank 1)."""
    model, _, _, (x_val, y_val), test = setup
    result = harmonic_prune(model, x_val, y_val, test_data=test, progress=False)
    start = result.accepted[0]["accuracy"]
    assert result.floor == pytest.approx(start - 0.01)
    assert all(r["accuracy"] >= start - 0.01 - 1e-12 for r in result.accepted)
    assert all(r["accuracy"] < start - 0.01 for r in result.history if not r["accepted"])
    assert hand_accuracy(result.model, x_val, y_val) > 0.5
    text = result.guarantee()
    test_drop = 100 * (result.accepted[0]["test_accuracy"] - hand_accuracy(result.model, *test))
    assert "within 1 pt of the start on the stopping set (300 points" in text
    assert f"test drop {test_drop:.2f} pt" in text


def test_a_floor_above_the_start_raises(setup):
    model, _, _, (x_val, y_val), _ = setup
    start = harmonic_prune(model, x_val, y_val, max_iterations=0, progress=False).initial_accuracy
    with pytest.raises(relusv.InvalidInputError, match="above the unpruned model's accuracy"):
        harmonic_prune(model, x_val, y_val, min_accuracy=min(1.0, start + 0.01), progress=False)
    result = harmonic_prune(model, x_val, y_val, min_accuracy=start - 0.1, progress=False)
    assert result.tolerance is None and "at least" in result.guarantee()
    assert all(r["accuracy"] >= start - 0.1 for r in result.accepted)


def test_bisection_retrainings_are_logarithmic_in_the_ranks():
    """Three 300 x 300 layers (rank 300): O(log 300) retrainings per layer, not 299."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(300, 300), nn.ReLU(), nn.Linear(300, 300), nn.ReLU(),
                          nn.Linear(300, 300), nn.ReLU(), nn.Linear(300, 4))
    x = torch.randn(64, 300)
    with torch.no_grad():
        y = model(x).argmax(1)
    calls = []
    result = harmonic_prune(model, x, y, retrain=lambda m: calls.append(1), tolerance=0.05, patience=0,
                            final_retrainings=0, progress=False)
    assert result.history[0]["ranks"] == [300, 300, 300] and result.stop_reason == "every layer at its lowest " \
        "accepted rank"
    assert not all(r["accepted"] for r in result.history)          # some cuts refused
    # Each trial leaves at most 3/4 of a layer's undecided interval (+1 for rounding): log_{4/3}(300) + 2 each.
    bound = 3 * (math.ceil(math.log(300) / math.log(4 / 3)) + 2)
    assert len(calls) == result.retrainings == len(result.history) - 1 <= bound < 3 * 299 / 10
    # Plain bisection with every cut accepted: rank - floor(rank / 2) each time, ceil(log2(300)) = 9 cuts a layer,
    # then the final retraining's rounds.
    full = harmonic_prune(model, x, y, retrain=lambda m: None, tolerance=1.0, cut_fraction=0.5, final_retrainings=3,
                          progress=False)
    assert full.accepted[-1]["ranks"] == [1, 1, 1] and full.retrainings == 3 * 9 + 3
    assert [r["rank_tried"] for r in full.history if r["layer"] == "0"] == [150, 75, 38, 19, 10, 5, 3, 2, 1]


def digits_double_mlp(seed: int):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed)
    model = nn.Sequential(DoubleLinear(64, 32, 32, seed=seed), nn.ReLU(), DoubleLinear(32, 32, 32, seed=seed + 1),
                          nn.ReLU(), nn.Linear(32, 10))
    train_x, train_y = x[order[:1000]], y[order[:1000]]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for batch in torch.randperm(1000, generator=torch.Generator().manual_seed(seed)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            opt.step()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=64,
                                         shuffle=True, generator=torch.Generator().manual_seed(seed))
    return model, (x[order[1000:1400]], y[order[1000:1400]]), loader


def test_retraining_reaches_fewer_parameters_than_one_shot():
    model, (x_val, y_val), loader = digits_double_mlp(0)
    one_shot = harmonic_prune(model, x_val, y_val, progress=False)
    retrained = harmonic_prune(model, x_val, y_val, retrain=loader, retrain_batches=30, progress=False)
    assert retrained.retrained and not one_shot.retrained and one_shot.retrainings == 0
    for result in (one_shot, retrained):
        assert result.parameters == sum(p.numel() for p in result.model.parameters())
        assert result.accepted[-1]["accuracy"] >= result.accepted[0]["accuracy"] - 0.01
    assert retrained.parameters < one_shot.parameters


def test_bad_arguments_raise_clear_errors(setup):
    model, _, _, (x_val, y_val), _ = setup
    for options, match in (({"min_rank": 0}, "min_rank"), ({"tolerance": 2}, "tolerance"),
                           ({"patience": -1}, "patience"), ({"final_retrainings": 1.5}, "final_retrainings"),
                           ({"selection_fraction": 1.0}, "selection_fraction"),
                           ({"tolerance": -0.1}, "tolerance"), ({"schedule": "fast"}, "schedule"),
                           ({"retrain": True}, "retrain=True"), ({"min_accuracy": 1.5}, "min_accuracy"),
                           ({"cut_fraction": 0.7}, "cut_fraction")):
        with pytest.raises(relusv.InvalidInputError, match=match):
            harmonic_prune(model, x_val, y_val, progress=False, **options)
    with pytest.raises(ValueError, match="no submodule"):
        harmonic_prune(model, x_val, y_val, layers=["9"])
    with pytest.raises(relusv.InvalidTypeError, match="Linear or DoubleLinear"):
        harmonic_prune(model, x_val, y_val, layers=["1"])
    with pytest.raises(relusv.InvalidInputError, match="points but y_val"):
        harmonic_prune(model, x_val, y_val[:5])


def test_test_data_takes_no_part_in_decisions(setup):
    model, _, _, (x_val, y_val), (x_test, y_test) = setup
    a = harmonic_prune(model, x_val, y_val, test_data=(x_test, y_test), progress=False)
    b = harmonic_prune(model, x_val, y_val, test_data=(x_test, 2 - y_test), progress=False)
    strip = [{k: v for k, v in r.items() if k != "test_accuracy"} for r in a.history]
    assert strip == [{k: v for k, v in r.items() if k != "test_accuracy"} for r in b.history]
    for record in a.history:
        assert "test_accuracy" in record
    assert a.accepted[-1]["test_accuracy"] == pytest.approx(hand_accuracy(a.model, x_test, y_test), abs=1e-12)


def test_parameter_budget_stop(setup):
    model, _, _, (x_val, y_val), _ = setup
    result = harmonic_prune(model, x_val, y_val, tolerance=1.0, max_parameters=150, progress=False)
    assert result.stop_reason == "parameter budget"
    counts = [r["parameters"] for r in result.accepted]
    assert counts[-1] <= 150 and all(c > 150 for c in counts[:-1])



class _Scripted:
    """A retraining that sets the output layer ``4`` (never pruned) to a scripted state per round: ``"break"``
    (every point classified as class 2) or ``"keep"`` (its weights as given), so every round's accuracy is known."""

    def __init__(self, model, script):
        layer = model.get_submodule("4")
        self.kept = layer.weight.detach().clone(), layer.bias.detach().clone()
        self.script, self.calls = list(script), 0

    def __call__(self, model):
        state = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        layer = model.get_submodule("4")
        with torch.no_grad():
            if state == "break":
                layer.weight.zero_()
                layer.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
            else:
                layer.weight.copy_(self.kept[0])
                layer.bias.copy_(self.kept[1])


BASE = dict(schedule="single", tolerance=0.05, progress=False)


def test_patience_retrains_a_cut_below_the_floor_before_refusing_it(setup):
    """A cut below the floor after its retraining is retrained again, up to ``patience`` more rounds; kept when a
    round brings it back, else refused and put back. Oracle: accuracies by hand."""
    model, _, _, (x_val, y_val), stop = setup
    options = dict(BASE, stop_data=stop, max_iterations=1, final_retrainings=0)
    unchanged = harmonic_prune(model, x_val, y_val, retrain=lambda m: None, **options).history
    assert unchanged[1]["accepted"]
    broken = float((stop[1] == 2).double().mean())                  # the accuracy of "every point is class 2"
    assert broken < unchanged[0]["accuracy"] - 0.05
    recovering = _Scripted(model, ["break", "break", "keep"])
    kept = harmonic_prune(model, x_val, y_val, retrain=recovering, patience=2, **options)
    assert recovering.calls == 3 and kept.history[1]["retrainings"] == 3 == kept.retrainings
    assert kept.history[1]["accepted"]
    assert kept.history[1]["accuracy"] == pytest.approx(unchanged[1]["accuracy"], abs=1e-12)
    for patience, script, calls in ((0, ["break", "keep"], 1), (1, ["break", "break", "keep"], 2)):
        retraining = _Scripted(model, script)
        refused = harmonic_prune(model, x_val, y_val, retrain=retraining, patience=patience, **options)
        assert retraining.calls == calls == refused.retrainings and not refused.history[1]["accepted"]
        assert refused.history[1]["accuracy"] == pytest.approx(broken, abs=1e-12)
        assert hand_accuracy(refused.model, *stop) == pytest.approx(unchanged[0]["accuracy"], abs=1e-12)
        assert torch.equal(refused.model.get_submodule("4").weight, model.get_submodule("4").weight)


def test_final_retraining_is_recorded_and_undone_below_the_floor(setup):
    model, _, _, (x_val, y_val), stop = setup
    options = dict(BASE, stop_data=stop, max_iterations=2, patience=0)
    calls = []
    kept = harmonic_prune(model, x_val, y_val, retrain=lambda m: calls.append(1), final_retrainings=3, **options)
    last = kept.history[-1]
    assert last["layer"] is None and last["rank_tried"] is None and last["retrainings"] == 3 and last["accepted"]
    assert last["ranks"] == kept.accepted[-2]["ranks"] and len(calls) == kept.retrainings == 2 + 3
    assert last["accuracy"] == pytest.approx(hand_accuracy(kept.model, *stop), abs=1e-12)
    breaking = _Scripted(model, ["keep", "keep", "break"])           # the two cuts as they are; the final round breaks
    undone = harmonic_prune(model, x_val, y_val, retrain=breaking, final_retrainings=1, **options)
    last = undone.history[-1]
    assert last["layer"] is None and not last["accepted"] and last["accuracy"] < undone.floor
    assert hand_accuracy(undone.model, *stop) == pytest.approx(undone.accepted[-1]["accuracy"], abs=1e-12)
    assert torch.equal(undone.model.get_submodule("4").weight, model.get_submodule("4").weight)
    recovering = _Scripted(model, ["keep", "keep", "break", "keep"])   # the final retraining's patience
    patient = harmonic_prune(model, x_val, y_val, retrain=recovering, final_retrainings=1, **dict(options, patience=1))
    last = patient.history[-1]
    assert last["layer"] is None and last["accepted"] and last["retrainings"] == 2 and recovering.calls == 4
    assert last["accuracy"] == pytest.approx(hand_accuracy(patient.model, *stop), abs=1e-12)
    without = harmonic_prune(model, x_val, y_val, retrain=lambda m: None, final_retrainings=0, **options)
    assert all(r["layer"] is not None for r in without.history[1:])
    one_shot = harmonic_prune(model, x_val, y_val, final_retrainings=5, **options)
    assert one_shot.retrainings == 0 and all(r["layer"] is not None for r in one_shot.history[1:])


def test_the_svd_kept_between_trials_follows_the_layer():
    """A layer's SVD is reused across trials only while the layer is the same module with the same values: an
    in-place change (a retraining step) or a replaced module gives the SVD of what is there now (NumPy's)."""
    from relusv.torch.pruning import _Pruning

    torch.manual_seed(0)
    model = nn.Sequential(DoubleLinear(6, 5, rank=4, seed=0), nn.ReLU(), nn.Linear(5, 2))
    x, y = torch.randn(12, 6), torch.randint(0, 2, (12,))
    run = _Pruning(model, ["0"], (x, y), (x, y), None, 64, None, None)

    def values():
        product = model[0].weight1.detach().double() @ model[0].weight2.detach().double()
        return np.linalg.svd(product.numpy(), compute_uv=False)[:4]

    first = run.svd("0")
    assert run.svd("0") is first
    np.testing.assert_allclose(first[1], values(), rtol=1e-10)
    with torch.no_grad():
        model[0].weight1.mul_(3.0)
    np.testing.assert_allclose(run.svd("0")[1], values(), rtol=1e-10)
    model[0] = DoubleLinear(6, 5, rank=4, seed=1)
    np.testing.assert_allclose(run.svd("0")[1], values(), rtol=1e-10)
