"""``relusv report --example cnn``: the built-in digits CNN end to end (MATH.md section 9).

Oracles: the held-out accuracy by hand (argmax of the model on the stored
test indices), the linear spectra of the kernel matrices (BatchNorm folded
by hand) with NumPy's SVD, the report's JSON against its schema, the one-shot
pruning's accuracies against NumPy-truncated copies of the model, and the
retrained path against the rules it must follow (one cut per iteration,
retraining exactly where the criterion says, every state within tolerance).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")


def test_the_cnn_example_reports_its_convolutions(tmp_path, capsys):
    import jsonschema
    from relusv.cli import main
    from relusv.torch.digits_cnn import load_digits_cnn

    code = main(["report", "--example", "cnn", "--out", str(tmp_path / "r"), "--quick", "--no-progress", "--json",
                 "--retrain"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(report, json.loads((tmp_path / "r" / "schema.json").read_text()))
    model, x, y, _ = load_digits_cnn()
    with torch.no_grad():
        hand = float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
    assert report["data"]["accuracy"] == pytest.approx(hand, abs=1e-12) and report["data"]["points"] == len(y)
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert layers["0"]["kind"] == layers["2"]["kind"] == "conv2d" and layers["6"]["kind"] == "linear"
    bn = model[3]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double()
    folded = (model[2].weight.detach().double() * scale[:, None, None, None]).reshape(32, -1).numpy()
    expected = {"0": model[0].weight.detach().double().reshape(16, -1).numpy(), "2": folded}
    for name, k_mat in expected.items():
        np.testing.assert_allclose(layers[name]["singular_values"], np.linalg.svd(k_mat, compute_uv=False),
                                   rtol=1e-5, atol=1e-6)
    assert "BatchNorm2d" in layers["2"]["folded"]
    _check_pruning(report, model, x, y)
    _check_retrained(report)


def _truncated(model, names, ranks):
    """A copy of ``model`` with each named layer's W (K_mat) replaced by its rank-r SVD truncation (NumPy)."""
    import copy

    pruned = copy.deepcopy(model)
    for name, r in zip(names, ranks):
        layer = pruned.get_submodule(name)
        w = layer.weight.detach().double().numpy()
        u, s, vt = np.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(((u[:, :r] * s[:r]) @ vt[:r]).reshape(w.shape)))
    return pruned


def _check_pruning(report, model, x, y):
    """The one-shot path on the CNN: its halves are the seeded permutation's, its ranks fall one at a time, the
    chosen point obeys the tolerance rule, and its evaluation accuracy is that of the model with each pruned
    layer's W truncated by NumPy's SVD (at most one point may differ through float32 rounding)."""
    p = report["pruning"]
    assert p is not None and "harmonic_prune" in report["model"]["pruning"]
    assert p["names"] == ["0", "2", "6"] and p["shapes"][0] == [16, 9]
    order = np.random.default_rng(report["settings"]["seed"]).permutation(len(y))
    sel, ev = np.sort(order[:len(y) // 2]), np.sort(order[len(y) // 2:])
    assert (p["selection_points"], p["evaluation_points"]) == (sel.size, ev.size)
    history = p["history"]
    assert all(sum(a["ranks"]) - sum(b["ranks"]) == 1 for a, b in zip(history, history[1:]))
    assert all(r == 1 for r in history[-1]["ranks"])
    base = history[0]["selection_accuracy"]
    within = [h for h in history if h["selection_accuracy"] >= base - p["tolerance"]]
    first_below = next((h["iteration"] for h in history if h["selection_accuracy"] < base - p["tolerance"]), None)
    assert p["chosen"]["iteration"] == (history[-1]["iteration"] if first_below is None else first_below - 1)
    assert within
    for record in (history[0], p["chosen"]):
        pruned = _truncated(model, p["names"], record["ranks"])
        with torch.no_grad():
            for idx, key in ((ev, "evaluation_accuracy"), (sel, "selection_accuracy")):
                hand = (pruned(torch.from_numpy(x[idx])).argmax(1).numpy() == y[idx]).mean()
                assert record[key] == pytest.approx(hand, abs=1.0 / idx.size + 1e-12)


def test_example_with_a_model_is_refused(capsys):
    from relusv.cli import main

    assert main(["report", "--example", "cnn", "--model", "m.pt", "--data", "d.npz"]) == 2
    assert "--example" in capsys.readouterr().err


def _check_retrained(report):
    """The retrained path on the CNN: the same layers and halves as the one-shot path, one rank cut per accepted
    iteration, retraining exactly where the cut left the selection accuracy more than 0.5 % below the start, every
    accepted state within the tolerance, the last one chosen."""
    p, one_shot = report["pruning_retrained"], report["pruning"]
    assert p is not None and p["method"] == "retrained" and "also with retraining" in report["model"]["pruning"]
    assert p["names"] == one_shot["names"] and p["shapes"] == one_shot["shapes"]
    assert (p["selection_points"], p["evaluation_points"]) == (one_shot["selection_points"],
                                                               one_shot["evaluation_points"])
    assert p["training_points"] > 0 and p["retraining"]["batches"] > 0
    history = p["history"]
    base = history[0]["selection_accuracy"]
    assert base == one_shot["history"][0]["selection_accuracy"]
    assert len(history) > 1 and all(sum(a["ranks"]) - sum(b["ranks"]) == 1 for a, b in zip(history, history[1:]))
    assert all(h["selection_accuracy"] >= base - p["tolerance"] - 1e-12 for h in history)
    for h in history[1:]:
        dropped = h["selection_accuracy_before_retraining"] < base - 0.005
        assert h["retrained"] == dropped, h
        if not h["retrained"]:
            assert h["selection_accuracy"] == h["selection_accuracy_before_retraining"]
    assert any(h["retrained"] for h in history)
    assert p["chosen"]["iteration"] == history[-1]["iteration"] and p["chosen"]["ranks"] == history[-1]["ranks"]
