"""``relusv report --example cnn``: the built-in digits CNN end to end (MATH.md section 9).

Oracles: the held-out accuracy by hand (argmax of the model on the stored
test indices), the linear spectra of the kernel matrices (BatchNorm folded
by hand) with NumPy's SVD, the report's JSON against its schema.
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

    code = main(["report", "--example", "cnn", "--out", str(tmp_path / "r"), "--quick", "--no-progress", "--json"])
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


def test_example_with_a_model_is_refused(capsys):
    from relusv.cli import main

    assert main(["report", "--example", "cnn", "--model", "m.pt", "--data", "d.npz"]) == 2
    assert "--example" in capsys.readouterr().err
