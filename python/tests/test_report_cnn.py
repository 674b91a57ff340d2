"""``relusv report --example cnn``: the built-in digits CNN end to end (MATH.md section 9).

Oracles: the held-out accuracy by hand (argmax of the model on the stored
test indices), the linear spectra of the kernel matrices (BatchNorm folded
by hand) with NumPy's SVD, the report's JSON against its schema, the one-shot
pruning's accuracies against NumPy-truncated copies of the model, and the
retrained path against the rules it must follow (one layer cut per accepted trial,
retraining after every cut, every state within tolerance on the stopping set).
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


def _sets(n, seed):
    """Three seeded disjoint thirds (selection, stopping, evaluation) of range(n)."""
    order = np.random.default_rng(seed).permutation(n)
    a, b = int(np.floor(n / 3 + 1e-9)), int(np.floor(2 * n / 3 + 1e-9))
    return np.sort(order[:a]), np.sort(order[a:b]), np.sort(order[b:])


def _hand_parameters(model, shapes, ranks):
    """Every parameter as stored, except the pruned layers' weights: min(r (m + n), m n) each."""
    total = sum(p.numel() for p in model.parameters())
    for (m, n), r in zip(shapes, ranks):
        total += min(r * (m + n), m * n) - m * n
    return total


def _check_path(p, model, x, y, seed):
    """Sets, tolerance, counts and accuracies of one pruning section of the torch route."""
    sets = _sets(len(y), seed)
    assert [p[f"{k}_points"] for k in ("selection", "stopping", "evaluation")] == [len(i) for i in sets]
    history = p["history"]
    base = history[0]["stopping_accuracy"]
    assert all(h["stopping_accuracy"] >= base - p["tolerance"] - 1e-12 for h in history)
    for a, b in zip(history, history[1:]):
        drops = [r0 - r1 for r0, r1 in zip(a["ranks"], b["ranks"])]
        assert sum(d > 0 for d in drops) == 1 and min(drops) >= 0     # one layer cut per accepted trial
    assert p["trials"] <= sum(int(np.ceil(np.log(r) / np.log(4 / 3))) + 2 for r in p["initial_ranks"])
    assert p["chosen"]["ranks"] == history[-1]["ranks"]
    for record in (history[0], p["chosen"]):
        assert record["parameters"] == _hand_parameters(model, p["shapes"], record["ranks"])
    pruned = _truncated(model, p["names"], history[0]["ranks"])
    with torch.no_grad():
        for idx, key in zip(sets, ("selection_accuracy", "stopping_accuracy", "evaluation_accuracy")):
            hand = (pruned(torch.from_numpy(x[idx])).argmax(1).numpy() == y[idx]).mean()
            assert history[0][key] == pytest.approx(hand, abs=1.0 / idx.size + 1e-12)
    return history


def _check_pruning(report, model, x, y):
    """The one-shot path on the CNN: seeded thirds, cuts kept within the tolerance on the stopping set, counts by
    hand, and every accepted state's accuracies those of the model with each pruned layer's W truncated by
    NumPy's SVD (at most one point may differ through float32 rounding)."""
    p = report["pruning"]
    assert p is not None and "harmonic_prune" in report["model"]["pruning"]
    assert p["names"] == ["0", "2", "6"] and p["shapes"][0] == [16, 9]
    history = _check_path(p, model, x, y, report["settings"]["seed"])
    pruned = _truncated(model, p["names"], p["chosen"]["ranks"])
    sets = _sets(len(y), report["settings"]["seed"])
    with torch.no_grad():
        for idx, key in zip(sets, ("selection_accuracy", "stopping_accuracy", "evaluation_accuracy")):
            hand = (pruned(torch.from_numpy(x[idx])).argmax(1).numpy() == y[idx]).mean()
            assert history[-1][key] == pytest.approx(hand, abs=1.0 / idx.size + 1e-12)


def test_example_with_a_model_is_refused(capsys):
    from relusv.cli import main

    assert main(["report", "--example", "cnn", "--model", "m.pt", "--data", "d.npz"]) == 2
    assert "--example" in capsys.readouterr().err


def _check_retrained(report):
    """The retrained path on the CNN: the same layers and sets as the one-shot path, a retraining after every cut,
    every accepted state within the tolerance on the stopping set, the last one chosen."""
    from relusv.torch.digits_cnn import load_digits_cnn

    p, one_shot = report["pruning_retrained"], report["pruning"]
    assert p is not None and p["method"] == "retrained" and "also with retraining" in report["model"]["pruning"]
    assert p["names"] == one_shot["names"] and p["shapes"] == one_shot["shapes"]
    assert p["training_points"] > 0 and p["retraining"]["batches"] > 0
    model, x, y, _ = load_digits_cnn()
    history = _check_path(p, model, x, y, report["settings"]["seed"])
    assert history[0]["stopping_accuracy"] == one_shot["history"][0]["stopping_accuracy"]
    assert all(h["retrained"] for h in history[1:])




def test_quick_pruning_stops_at_its_trial_limit_and_says_so(tmp_path, capsys, monkeypatch):
    """``ReportSettings.pruning_trials`` caps the torch model's trial cuts (40 in the quick settings); a capped
    run is recorded as such in report.json and said so in the printed summary."""
    import dataclasses

    from relusv.cli import main
    from relusv.report import settings as report_settings

    default = report_settings.ReportSettings.default
    monkeypatch.setattr(report_settings.ReportSettings, "default", classmethod(
        lambda cls, **kw: dataclasses.replace(default(**kw), pruning_trials=2)))
    assert default(quick=True).pruning_trials == 40 and default().pruning_trials is None
    code = main(["report", "--example", "cnn", "--out", str(tmp_path / "r"), "--quick", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    pruning = json.loads((tmp_path / "r" / "report.json").read_text())["pruning"]
    assert pruning["trials"] == 2 and pruning["stop_reason"] == "max_iterations"
    assert "stopped after 2 trial cuts" in out
