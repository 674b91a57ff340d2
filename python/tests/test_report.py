"""``relusv report``: the built-in default end to end (quick settings), its files, and its numbers.

Every number in report.json is recomputed here another way: the forward pass
in plain NumPy from the shipped .npz, singular values and truncations with
``numpy.linalg.svd``, diameters with ``scipy.spatial.distance.pdist``, the
exact ``s_0`` and ``t_k`` of MATH.md section 2 directly, the GMW with
``relusv.gmw`` on the stored subsets and seeds.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import relusv
from relusv.report.command import print_headline
from relusv.report.default import NETWORK
from scipy.spatial.distance import pdist

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def default_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([sys.executable, "-m", "relusv", "report", "--quick", "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    report = json.loads((out / "report.json").read_text())
    return out, summary, report


def _digits_network():
    """Weights, biases and held-out data straight from the files (independent of relusv.report)."""
    from sklearn.datasets import load_digits

    with np.load(NETWORK) as f:
        ws = [f[f"W{i}"].astype(np.float64) for i in range(4)]
        bs = [f[f"b{i}"].astype(np.float64) for i in range(4)]
        idx = f["test_index"]
    d = load_digits()
    return ws, bs, d.data[idx] / 16.0, d.target[idx]


def _activations(ws, bs, x):
    acts = [x]
    for i, (w, b) in enumerate(zip(ws, bs)):
        z = acts[-1] @ w.T + b
        acts.append(np.maximum(z, 0) if i < len(ws) - 1 else z)
    return acts


def test_default_report_files_and_schema(default_report):
    out, summary, report = default_report
    schema = json.loads((out / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    for name in ["index.html", "report.json", "subsets.npz", *report["files"]["csv"],
                 *[f for f in report["files"]["figures"].values() if f]]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert set(report["files"]["csv"]) == {"layers.csv", "spectra.csv", "gmw.csv", "pruning.csv",
                                           "pruning_retrained.csv"}
    figures = report["files"]["figures"]
    assert all(figures[k] for k in ("spectra", "gmw", "pruning", "pruning_retrained"))
    assert report["pruning_retrained"] is not None  # the built-in network brings its training split
    assert summary["report"] == str((out / "index.html").resolve())
    # A broken report must fail validation: the schema is not vacuous.
    broken = json.loads(json.dumps(report))
    broken["layers"][0]["rank"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema, cls=jsonschema.Draft202012Validator)


def test_default_report_forward_pass_and_groups(default_report):
    out, _, report = default_report
    ws, bs, x, y = _digits_network()
    pred = _activations(ws, bs, x)[-1].argmax(axis=1)
    d = report["data"]
    assert d["points"] == len(y) == 1258
    assert d["accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-15)
    assert d["incorrect"] == int(np.sum(pred != y)) and d["incorrect"] >= 10
    assert d["group_size"] == min(d["correct"], d["incorrect"], report["settings"]["max_group_size"])
    with np.load(out / "subsets.npz") as s:
        assert np.array_equal(s["incorrect"], np.flatnonzero(pred != y))
        for r in range(report["settings"]["repeats"]):
            assert len(s[f"correct_{r}"]) == len(s[f"incorrect_{r}"]) == d["group_size"]
            assert np.all(pred[s[f"correct_{r}"]] == y[s[f"correct_{r}"]])
            assert np.all(pred[s[f"incorrect_{r}"]] != y[s[f"incorrect_{r}"]])
            assert len(np.unique(s[f"correct_{r}"])) == d["group_size"]


def test_default_report_widths_agree_with_library(default_report):
    out, _, report = default_report
    ws, bs, x, _ = _digits_network()
    acts = _activations(ws, bs, x)
    st = report["settings"]
    with np.load(out / "subsets.npz") as s:
        subsets = {k: s[k] for k in s.files}
    assert [d["depth"] for d in report["depths"]] == list(range(len(acts)))
    for d in report["depths"]:
        for group in ("correct", "incorrect"):
            widths, dims = [], []
            for r in range(st["repeats"]):
                pts = acts[d["depth"]][subsets[f"{group}_{r}"]]
                # Every repeat and both groups on the same directions (MATH.md section 11).
                w = relusv.gmw(pts, samples=st["gmw_samples"], seed=st["seed"], trim=st["gmw_trim"])
                widths.append(w)
                dims.append((w / pdist(pts).max()) ** 2)
            np.testing.assert_allclose(d["gmw"][group]["values"], widths, rtol=1e-12)
            np.testing.assert_allclose(d["effective_dimension"][group]["values"], dims, rtol=1e-9)
            assert d["gmw"][group]["mean"] == pytest.approx(np.mean(widths), rel=1e-12)
            assert d["gmw"][group]["spread"] == pytest.approx(np.std(widths, ddof=1), rel=1e-9)


def test_default_report_spectra_agree_with_oracles(default_report):
    out, _, report = default_report
    ws, bs, x, _ = _digits_network()
    acts = _activations(ws, bs, x)
    with np.load(out / "subsets.npz") as s:
        subsets = {k: s[k] for k in s.files}
    assert len(report["layers"]) == 4
    for layer, w, b in zip(report["layers"], ws, bs):
        u, sv, vt = np.linalg.svd(w, full_matrices=False)
        np.testing.assert_allclose(layer["singular_values"], sv, rtol=0, atol=1e-10 * sv[0])
        assert layer["shape"] == list(w.shape) and layer["rank"] == np.linalg.matrix_rank(w)
        if not layer["relu"]:
            assert layer["relu_bounds"] == {"correct": None, "incorrect": None, "unit_sphere": None}
            continue
        # Over a sphere sample of radius 1 (b = 0): MATH.md §2 chain, s_k <= t_k <= sigma_k.
        sphere = layer["relu_bounds"]["unit_sphere"]
        assert sphere["points"] == report["settings"]["sphere_points"] + 2 * layer["rank"]  # sample and ±v_j
        assert sphere["radius"] == pytest.approx(1.0, abs=1e-9)
        assert sphere["ks"][0] == 0 and sphere["ks"][-1] == min(w.shape) - 1
        assert len(sphere["ks"]) == report["settings"]["spectrum_points"]
        assert np.all(np.array(sphere["bound"]) <= sv[sphere["ks"]] * (1 + 1e-9))
        assert np.all(np.diff(sphere["bound"]) <= 1e-12) and sphere["bound"][0] > 0
        for group in ("correct", "incorrect"):
            curve = layer["relu_bounds"][group]
            pts = acts[layer["index"]][subsets[f"{group}_0"]]
            phi = np.maximum(pts @ w.T + b, 0)
            assert curve["radius"] == pytest.approx(np.linalg.norm(pts, axis=1).max(), rel=1e-12)
            ks = np.array(curve["ks"])
            # Ranks below rank(X W^T) only: from there on s_k = 0 exactly (MATH.md section 2).
            data_rank = np.linalg.matrix_rank(pts @ w.T)
            assert data_rank <= len(pts) == report["data"]["group_size"]
            assert curve["zero_from"] == min(min(w.shape), data_rank) and curve["rank_limit"] == min(w.shape)
            assert ks[0] == 0 and ks[-1] == curve["zero_from"] - 1
            assert len(ks) == min(report["settings"]["spectrum_points"], curve["zero_from"])
            # s_0 is exact (MATH.md section 2), on the first subset and on every repeat's subset.
            s0 = np.linalg.norm(phi - np.maximum(b, 0), axis=1).max()
            assert curve["bound"][0] == pytest.approx(s0, rel=1e-9)
            for r, value in enumerate(layer["top_bound"][group]["values"]):
                p_r = acts[layer["index"]][subsets[f"{group}_{r}"]]
                exact = np.linalg.norm(np.maximum(p_r @ w.T + b, 0) - np.maximum(b, 0), axis=1).max()
                assert value == pytest.approx(exact, rel=1e-9)
            for k, t, bound, sigma in zip(ks, curve["truncation_bound"], curve["bound"], curve["sigma"]):
                wk = (u[:, :k] * sv[:k]) @ vt[:k]
                t_k = np.linalg.norm(phi - np.maximum(pts @ wk.T + b, 0), axis=1).max()
                assert sigma == pytest.approx(sv[k], rel=1e-9)
                if k > 0:
                    assert t == pytest.approx(t_k, rel=1e-6, abs=1e-9)
                assert bound <= t * (1 + 1e-9) + 1e-12 <= sv[k] * curve["radius"] * (1 + 1e-6) + 1e-9
            assert np.all(np.diff(curve["bound"]) <= 1e-12)  # monotone


def test_default_report_pruning_is_consistent(default_report):
    _, _, report = default_report
    ws, bs, x, y = _digits_network()
    p = report["pruning"]
    assert p["layers"] == [0, 1, 2] and p["initial_ranks"] == [64, 100, 100]
    assert p["parameters_before"] == sum(w.size + b.size for w, b in zip(ws, bs)) == report["model"]["parameters"]
    history = p["history"]
    assert [h["iteration"] for h in history] == list(range(len(history)))
    assert history[-1]["ranks"] == [1, 1, 1]
    for prev, cur in zip(history, history[1:]):
        diff = np.array(prev["ranks"]) - np.array(cur["ranks"])
        assert sorted(diff) == [0, 0, 1] and p["layers"][int(np.argmax(diff))] == cur["layer"]
    sizes = [p[f"{k}_points"] for k in ("selection", "stopping", "evaluation")]
    assert sum(sizes) == len(y) and max(sizes) - min(sizes) <= 1

    def correct_count(ranks):
        trunc = list(ws)
        for i, r in zip(p["layers"], ranks):
            u, s, vt = np.linalg.svd(ws[i], full_matrices=False)
            trunc[i] = (u[:, :r] * s[:r]) @ vt[:r]
        return int(np.sum(_activations(trunc, bs, x)[-1].argmax(axis=1) == y))

    def hand_parameters(ranks):
        m = [ws[i].shape for i in p["layers"]]
        return sum(min(r * (a + b_), a * b_) + a for r, (a, b_) in zip(ranks, m)) + ws[3].size + 10

    # The three sets partition the data: their correct counts add up to the whole.
    keys = ("selection_accuracy", "stopping_accuracy", "evaluation_accuracy")
    for record in (history[0], p["chosen"], history[len(history) // 2]):
        total = sum(record[k] * n for k, n in zip(keys, sizes))
        assert total == pytest.approx(correct_count(record["ranks"]), abs=1e-6)
        assert record["parameters"] == hand_parameters(record["ranks"])
    chosen = p["chosen"]
    assert chosen["stopping_accuracy"] >= p["baseline"]["stopping_accuracy"] - p["tolerance"]
    after = history[chosen["iteration"] + 1] if chosen["iteration"] + 1 < len(history) else None
    if after is not None:  # the next cut leaves the tolerance on the stopping set
        assert after["stopping_accuracy"] < p["baseline"]["stopping_accuracy"] - p["tolerance"]
    drop = 100 * (p["baseline"]["evaluation_accuracy"] - chosen["evaluation_accuracy"])
    assert f"held-out drop {drop:.2f} pt on the evaluation set" in p["guarantee"]
    # With retraining (double layers, bisection): same sets, counts of the same rule, fewer parameters.
    r = report["pruning_retrained"]
    assert [r[f"{k}_points"] for k in ("selection", "stopping", "evaluation")] == sizes
    assert r["history"][0]["stopping_accuracy"] == p["history"][0]["stopping_accuracy"]
    for record in r["history"]:
        assert record["parameters"] == hand_parameters(record["ranks"])
        assert record["stopping_accuracy"] >= r["baseline"]["stopping_accuracy"] - r["tolerance"] - 1e-12
    assert r["chosen"]["parameters"] < p["chosen"]["parameters"]
    assert r["trials"] <= sum(int(np.ceil(np.log(k) / np.log(4 / 3))) + 2 for k in r["initial_ranks"])


def test_default_report_findings_match_numbers(default_report, capsys):
    _, summary, report = default_report
    f = report["findings"]
    hidden = [d for d in report["depths"] if "ReLU" in d["name"]]
    assert [r["depth"] for r in f["gmw_by_layer"]] == [d["depth"] for d in hidden]
    for row, d in zip(f["gmw_by_layer"], hidden):
        # The calibrated comparison (MATH.md section 11): D the mean paired difference, effect D / mean(f),
        # a verdict only where the Holm-adjusted p is below alpha, stated with p and the interval.
        c, i = np.array(d["gmw"]["correct"]["values"]), np.array(d["gmw"]["incorrect"]["values"])
        alpha = report["settings"]["alpha"]
        assert d["comparison"]["difference"] == pytest.approx(np.mean(c - i), rel=1e-12)
        assert row["effect"] == pytest.approx(np.mean(c - i) / np.mean(np.concatenate([c, i])), rel=1e-12)
        assert row["effect_low"] <= row["effect_high"]
        assert 1 / (report["settings"]["permutations"] + 1) <= row["p_value"] <= row["p_adjusted"] <= 1
        expected = "no difference shown" if row["p_adjusted"] >= alpha else \
            ("correct larger" if np.mean(c - i) > 0 else "incorrect larger")
        assert row["verdict"] == expected and row["correct_larger"] == (expected == "correct larger")
        assert row["statement"].startswith(f"{expected} (Holm-adjusted p = {row['p_adjusted']:.3g}; effect ")
        assert "same" not in row["statement"]
    assert f["gmw_correct_larger_all_layers"] == all(r["verdict"] == "correct larger" for r in f["gmw_by_layer"])
    steps = [d["gmw"]["correct"] for d in report["depths"] if "logits" not in d["name"]]
    assert f["gmw_grows_with_depth"]["correct"] == all(b["mean"] - a["mean"] > a["spread"] + b["spread"]
                                                       for a, b in zip(steps, steps[1:]))
    assert all(r["below_scaled_sigma"] for r in f["relu_bounds"])
    print_headline(summary)
    text = capsys.readouterr().out
    assert "GMW of correctly vs incorrectly classified points" in text
    assert f"report: {summary['report']}" in text
    assert all(name in text for name in ("fc0", "fc1", "fc2"))   # qualified module names
    for p in (summary["pruning"], summary["pruning_retrained"]):     # a cut that saves nothing says why
        if p is None:
            continue
        c = p["chosen"]
        line = next(t for t in text.splitlines() if f"harmonic pruning ({p['method']})" in t)
        cut = tuple(c["ranks"]) != tuple(p["initial_ranks"])
        assert ("no parameter saved" in line) == (cut and c["parameters"] == p["parameters_before"])


def _write_mlp(path: Path, sizes=(8, 6, 5, 3), seed=1, **override):
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"W{i}"] = rng.normal(size=(m, n))
        arrays[f"b{i}"] = rng.normal(size=m) * 0.1
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def _write_data(path: Path, n=120, dim=8, classes=3, seed=2, **override):
    rng = np.random.default_rng(seed)
    arrays = {"X": rng.normal(size=(n, dim)), "y": rng.integers(0, classes, size=n)}
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def _run(argv, capsys):
    from relusv.cli import main

    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_user_npz_model_with_npy_pair(tmp_path, capsys):
    _write_mlp(tmp_path / "m.npz")
    data = _write_data(tmp_path / "d.npz")
    np.save(tmp_path / "x.npy", data["X"].astype(np.float32))
    np.save(tmp_path / "y.npy", data["y"])
    code, out, err = _run(["report", "--model", str(tmp_path / "m.npz"), "--data", str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy"), "--out", str(tmp_path / "r"), "--quick", "--no-progress",
                           "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(report, json.loads((tmp_path / "r" / "schema.json").read_text()))
    assert s["data"]["points"] == 120 and report["model"]["layers"][0]["shape"] == [6, 8]
    assert report["pruning"]["initial_ranks"] == [6, 5]


def test_one_hot_labels_are_their_classes(tmp_path):
    """Labels as one-hot rows (``analyze`` takes them) give the same report data as class indices."""
    from relusv.report.data import validate

    arrays = _write_data(tmp_path / "d.npz")
    one_hot = np.eye(3, dtype=np.float32)[arrays["y"]]
    plain = validate(arrays["X"], arrays["y"], 8, 3, "d.npz")
    rows = validate(arrays["X"], one_hot, 8, 3, "d.npz")
    assert np.array_equal(plain.y, rows.y) and rows.y.dtype == np.int64


@pytest.mark.parametrize("case, fragment", [
    ("missing model", "no such model file"),
    ("missing data", "no such data file"),
    ("model without weights", "has no weight arrays W0"),
    ("data without y", "has no array named 'y'"),
    ("layer shape mismatch", "shape mismatch between consecutive layers"),
    ("labels out of range", "labels y must lie in [0, 2], got 3 at position 0"),
    ("feature mismatch", "points have 5 features but the model's first layer expects 8"),
    ("label length", "labels y must have shape (120,)"),
    ("label matrix", "labels y of shape (120, 3) are neither one-hot rows nor class probabilities"),
    ("NaN points", "NaN or infinity"),
    ("model needs data", "--model needs --data"),
    ("bias length", "bias of layer 1 has shape (4,)"),
    ("not a numpy file", "cannot read"),
    ("data with a bad CRC", "cannot read"),
    ("data with a corrupt deflate stream", "cannot read"),
    ("data as object arrays", "cannot read"),
    ("model with a bad CRC", "cannot read"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, case, fragment):
    model, data = tmp_path / "m.npz", tmp_path / "d.npz"
    _write_mlp(model)
    _write_data(data)
    argv = ["report", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "r"), "--no-progress"]
    if case == "missing model":
        argv[2] = str(tmp_path / "nope.npz")
    elif case == "missing data":
        argv[4] = str(tmp_path / "nope.npz")
    elif case == "model without weights":
        np.savez(model, A=np.zeros(3))
    elif case == "data without y":
        np.savez(data, X=np.zeros((4, 8)))
    elif case == "layer shape mismatch":
        _write_mlp(model, W1=np.zeros((5, 7)))
    elif case == "labels out of range":
        _write_data(data, y=np.full(120, 3))
    elif case == "feature mismatch":
        _write_data(data, X=np.zeros((120, 5)))
    elif case == "label length":
        _write_data(data, y=np.zeros(7, dtype=int))
    elif case == "label matrix":
        _write_data(data, y=np.full((120, 3), 2))
    elif case == "NaN points":
        x = np.zeros((120, 8))
        x[3, 2] = np.nan
        _write_data(data, X=x)
    elif case == "model needs data":
        argv = argv[:3] + argv[5:]
    elif case == "bias length":
        _write_mlp(model, b1=np.zeros(4))
    elif case == "not a numpy file":
        model.write_text("not an archive")
    elif case in ("data with a bad CRC", "model with a bad CRC"):
        path = data if case.startswith("data") else model
        raw = bytearray(path.read_bytes())
        start = raw.index(b"X.npy" if case.startswith("data") else b"W1.npy") + 300
        raw[start] ^= 0xFF                      # one flipped byte inside the stored array
        path.write_bytes(bytes(raw))
    elif case == "data with a corrupt deflate stream":
        arrays = dict(np.load(data))
        np.savez_compressed(data, **arrays)
        raw = bytearray(data.read_bytes())
        start = raw.index(b"X.npy") + 100
        raw[start:start + 40] = bytes(40)
        data.write_bytes(bytes(raw))
    elif case == "data as object arrays":
        np.savez(data, X=np.array([[1.0, "a"]] * 120, dtype=object), y=np.zeros(120, dtype=int))
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("relusv: error: "), err
    assert fragment in err, err
    assert "Traceback" not in err + out
    assert not (tmp_path / "r").exists()


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "relusv", "report", "--model", str(tmp_path / "missing.pt"),
                           "--data", str(tmp_path / "d.npz")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"relusv: error: no such model file: {tmp_path / 'missing.pt'}"


def test_help_has_examples(capsys):
    from relusv.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--data", "--out", "--seed", "--quick", "--json", "examples:"):
        assert option in text


def test_all_points_correct_gives_a_report_without_group_comparison(tmp_path, capsys):
    arrays = _write_mlp(tmp_path / "m.npz")
    x = np.random.default_rng(5).normal(size=(60, 8))
    h = x
    for i in range(3):
        h = h @ arrays[f"W{i}"].T + arrays[f"b{i}"]
        h = np.maximum(h, 0) if i < 2 else h
    np.savez(tmp_path / "d.npz", X=x, y=h.argmax(axis=1).astype(float))  # integral floats are accepted
    code, out, err = _run(["report", "--model", str(tmp_path / "m.npz"), "--data", str(tmp_path / "d.npz"),
                           "--out", str(tmp_path / "r"), "--quick", "--no-progress"], capsys)
    assert code == 0, err
    assert "too few correctly or incorrectly classified points" in out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(report, json.loads((tmp_path / "r" / "schema.json").read_text()))
    assert report["data"]["accuracy"] == 1.0 and report["data"]["group_size"] == 0
    assert all(d["gmw"] is None for d in report["depths"])
    assert report["files"]["figures"]["gmw"] is None
    hidden = [layer for layer in report["layers"] if layer["relu"]]
    assert all(layer["relu_bounds"]["correct"] is None and layer["relu_bounds"]["unit_sphere"] is not None
               for layer in hidden)
    assert "too few" in (tmp_path / "r" / "index.html").read_text().lower()


def test_the_numpy_path_gives_the_table_of_analyze():
    """Without torch the report runs the same table code on the NumPy forward pass: same numbers as analyze."""
    pytest.importorskip("torch")
    from relusv.report import analysis
    from relusv.report.default import default_inputs
    from relusv.report.settings import ReportSettings

    model, data, _ = default_inputs()
    settings = ReportSettings.default(quick=True)
    settings = type(settings)(**{**settings.to_dict(), "repeats": 2, "spectrum_points": 3, "sphere_points": 50})
    torch_rows, torch_attrs = analysis.run(model.module, model.network, data, settings, show_progress=False)
    numpy_rows, numpy_attrs = analysis.run(None, model.network, data, settings, show_progress=False)
    assert torch_attrs["subsets"] == numpy_attrs["subsets"] and torch_attrs["correct"] == numpy_attrs["correct"]
    assert [r["layer"] for r in numpy_rows] == [r["layer"] for r in torch_rows] == ["fc0", "fc1", "fc2", "fc3"]
    fitted = {"relu_bound_ratio_correct", "relu_bound_ratio_incorrect", "relu_k10_correct", "relu_k10_incorrect"}
    for a, b in zip(torch_rows, numpy_rows):
        for key, value in a.items():
            if key in fitted:
                # Fitted bounds: the two forward passes round differently (torch's and NumPy's float64
                # products), and an optimiser started from inputs 1e-16 apart ends elsewhere; both are certified.
                missing = [v is None or (isinstance(v, float) and np.isnan(v)) for v in (value, b[key])]
                assert missing[0] == missing[1], key          # pandas stores a missing integer as NaN
                if not missing[0]:
                    assert b[key] == pytest.approx(value, rel=0.05), key
            elif isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key
            else:
                assert b[key] == value, key


def test_the_built_in_report_runs_without_torch(tmp_path):
    """`relusv report` on a NumPy MLP needs no torch (the [report] extra does not bring it)."""
    # SciPy and scikit-learn look for torch when they are imported: import them first, then hide torch.
    script = ("import sys, scipy.stats, sklearn.datasets; sys.modules['torch'] = None; from relusv.cli import main; "
              f"sys.exit(main(['report', '--quick', '--no-progress', '--out', {str(tmp_path / 'r')!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["model"]["discovery"]["method"] == "numpy chain"
    assert [layer["name"] for layer in report["layers"]] == ["fc0", "fc1", "fc2", "fc3"]
