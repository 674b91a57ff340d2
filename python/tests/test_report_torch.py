"""``relusv report`` on PyTorch checkpoints: modules and state dicts, Linear and DoubleLinear."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from relusv.report.errors import ReportInputError  # noqa: E402
from relusv.report.source import load_model  # noqa: E402
from relusv.torch import DoubleLinear  # noqa: E402


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 6), nn.ReLU(), DoubleLinear(6, 5, rank=2), nn.ReLU(), nn.Linear(5, 3)).double()


@pytest.mark.parametrize("form", ["module", "state_dict", "wrapped"])
def test_checkpoint_forms_give_the_module_function(tmp_path, form):
    model = _model()
    path = tmp_path / "model.pt"
    obj = {"module": model, "state_dict": model.state_dict(), "wrapped": {"state_dict": model.state_dict(),
                                                                          "epoch": 3}}[form]
    torch.save(obj, path)
    loaded = load_model(str(path))
    net = loaded.network
    assert (loaded.notes != []) == (form != "module")   # a state_dict's ReLUs are an assumption, stated
    assert [layer.shape for layer in net.layers] == [(6, 8), (5, 6), (3, 5)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    assert net.layers[1].factors is not None
    assert net.layers[1].parameters == 2 * (6 + 5) + 5
    np.testing.assert_array_equal(net.layers[1].weight, model[2].weight.detach().numpy())
    x = np.random.default_rng(0).normal(size=(50, 8))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.activations(x)[-1], expected, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        np.testing.assert_allclose(loaded.module.double()(torch.from_numpy(x)).numpy(), expected, rtol=1e-12)


def test_unsupported_module_is_named(tmp_path):
    path = tmp_path / "lstm.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.LSTM(3, 2)), path)
    with pytest.raises(ReportInputError, match="LSTM"):
        load_model(str(path))


def test_a_tanh_network_is_not_analysed_as_relu(tmp_path):
    path = tmp_path / "tanh.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), path)
    loaded = load_model(str(path))
    assert loaded.network is None           # not a ReLU chain: no NumPy pruning either
    from relusv.torch import discover

    assert [(l.name, l.activation) for l in discover(loaded.module).layers] == [("0", "tanh"), ("2", None)]


@pytest.mark.parametrize("case, fragment", [
    ("complex", "complex"), ("meta", "meta tensor"), ("sparse", "sparse"), ("nan", "NaN"),
    ("batchnorm state", "not a plain MLP"), ("garbage", "cannot read"), ("truncated", "cannot read"),
])
def test_bad_checkpoints_are_user_errors(tmp_path, case, fragment):
    path = tmp_path / "m.pt"
    good = {"0.weight": torch.ones(3, 4), "0.bias": torch.zeros(3), "2.weight": torch.ones(2, 3)}
    if case == "complex":
        torch.save({**good, "0.weight": torch.ones(3, 4, dtype=torch.complex64)}, path)
    elif case == "meta":
        torch.save({**good, "0.weight": torch.empty(3, 4, device="meta")}, path)
    elif case == "sparse":
        torch.save({**good, "0.weight": torch.ones(3, 4).to_sparse()}, path)
    elif case == "nan":
        torch.save({**good, "0.bias": torch.tensor([0.0, float("nan"), 0.0])}, path)
    elif case == "batchnorm state":
        torch.save({**good, "1.running_mean": torch.zeros(3)}, path)
    elif case == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip archive")
    elif case == "truncated":
        torch.save(good, path)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ReportInputError, match=fragment):
        load_model(str(path))


def test_report_on_a_torch_checkpoint(tmp_path, capsys):
    from relusv.cli import main

    torch.save(_model().float(), tmp_path / "model.pt")
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "data.npz", X=rng.normal(size=(90, 8)).astype(np.float32), y=rng.integers(0, 3, 90))
    code = main(["report", "--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "data.npz"),
                 "--out", str(tmp_path / "r"), "--quick", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "report: " in out and (tmp_path / "r" / "index.html").is_file()


def test_report_with_retraining(tmp_path, capsys):
    import json

    import jsonschema
    from relusv.cli import main

    rng = np.random.default_rng(3)
    w = rng.normal(size=(3, 8))
    x = rng.normal(size=(300, 8))
    y = (x @ w.T).argmax(axis=1)  # learnable labels
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 3))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    np.savez(tmp_path / "test.npz", X=x[:150], y=y[:150])
    np.savez(tmp_path / "train.npz", X=x[150:], y=y[150:])
    code = main(["report", "--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test.npz"),
                 "--train-data", str(tmp_path / "train.npz"), "--retrain", "--tolerance", "5",
                 "--out", str(tmp_path / "r"), "--quick", "--no-progress", "--json"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    jsonschema.validate(report, json.loads((tmp_path / "r" / "schema.json").read_text()))
    p = report["pruning_retrained"]
    assert p["method"] == "retrained" and p["training_points"] == 150
    assert p["initial_ranks"] == [8, 10]
    history = p["history"]
    for prev, cur in zip(history, history[1:]):
        assert sum(prev["ranks"]) > sum(cur["ranks"])
    # Every accepted state keeps the stopping-set accuracy within the tolerance; counts in the cheaper form.
    assert all(h["stopping_accuracy"] >= history[0]["stopping_accuracy"] - 0.05 - 1e-12 for h in history)
    for h in history:
        hidden = sum(min(r * (m + n), m * n) + m for r, (m, n) in zip(h["ranks"], [(12, 8), (10, 12)]))
        assert h["parameters"] == hidden + 3 * 10 + 3
    assert (p["selection_points"], p["stopping_points"], p["evaluation_points"]) == (50, 50, 50)
    assert (tmp_path / "r" / "pruning_retrained.png").is_file()
    # --retrain with one's own model needs training data.
    code = main(["report", "--model", str(tmp_path / "model.pt"), "--data", str(tmp_path / "test.npz"),
                 "--retrain", "--out", str(tmp_path / "r2")])
    assert code == 2 and "--train-data" in capsys.readouterr().err


def test_torchscript_sequential_is_rebuilt_without_running_its_code(tmp_path):
    import warnings

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.LeakyReLU(0.2),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 2 * 2, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model), tmp_path / "scripted.pt")
    loaded = load_model(str(tmp_path / "scripted.pt"))
    assert not isinstance(loaded.module, torch.jit.ScriptModule) and "TorchScript" in loaded.notes[0]
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded.module.eval()(x), model(x), rtol=0, atol=0)
    from relusv.torch import discover

    assert [(l.name, l.activation, l.folded) for l in discover(loaded.module).layers] == [
        ("0", "leaky_relu", "1 (BatchNorm2d)"), ("5", "relu", ""), ("7", None, "")]


def test_torchscript_of_a_custom_class_is_refused_with_a_pointer(tmp_path):
    import warnings

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return torch.relu(self.fc(x))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(Custom()), tmp_path / "custom.pt")
    with pytest.raises(ReportInputError, match="TorchScript module .* is a Custom.*package.module:build"):
        load_model(str(tmp_path / "custom.pt"))


NETS = """
import torch
from torch import nn


def build():          # unseeded on purpose: relusv report seeds torch with --seed around the call
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
"""


def test_a_callable_without_weights_is_seeded_and_said(tmp_path, monkeypatch, capsys):
    """``--model pkg:build`` without ``--weights``: the weights the callable draws depend on ``--seed`` only
    (the caller's generator is untouched), and the run says on stderr that they are not trained weights."""
    from relusv.cli import main

    (tmp_path / "seednets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    before = torch.random.get_rng_state()
    a, b, c = (load_model("seednets:build", seed=s).module for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])
    g = torch.Generator().manual_seed(0)
    np.savez(tmp_path / "d.npz", X=torch.randn(40, 4, generator=g).numpy(), y=np.arange(40) % 2)
    code = main(["report", "--model", "seednets:build", "--data", str(tmp_path / "d.npz"), "--out",
                 str(tmp_path / "r"), "--quick", "--no-progress", "--json"])
    err = capsys.readouterr().err
    assert code == 0 and "no --weights given: the weights seednets:build creates (torch seeded with --seed 0)" in err


def test_weights_errors_say_what_to_give(tmp_path, monkeypatch):
    """A whole saved module as ``--weights``: the message asks for a state_dict; weights that do not fit name
    the missing and unexpected keys."""
    (tmp_path / "seednets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    torch.save(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)), tmp_path / "whole.pt")
    with pytest.raises(ReportInputError, match=r"--weights takes a state_dict: torch.save\(model.state_dict\(\)"):
        load_model("seednets:build", str(tmp_path / "whole.pt"))
    torch.save({"0.weight": torch.zeros(6, 4), "9.bias": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ReportInputError, match=r"Missing key\(s\).*0\.bias.*Unexpected key\(s\).*9\.bias"):
        load_model("seednets:build", str(tmp_path / "bad.pt"))
