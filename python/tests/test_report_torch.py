"""``relusv report`` on PyTorch checkpoints: modules and state dicts, Linear and DoubleLinear."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from relusv.report.errors import ReportInputError  # noqa: E402
from relusv.report.model import load_network  # noqa: E402
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
    net = load_network(str(path))
    assert [layer.shape for layer in net.layers] == [(6, 8), (5, 6), (3, 5)]
    assert [layer.relu for layer in net.layers] == [True, True, False]
    assert net.layers[1].factors is not None
    assert net.layers[1].parameters == 2 * (6 + 5) + 5
    np.testing.assert_array_equal(net.layers[1].weight, model[2].weight.detach().numpy())
    x = np.random.default_rng(0).normal(size=(50, 8))
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.activations(x)[-1], expected, rtol=1e-12, atol=1e-12)


def test_unsupported_module_is_named(tmp_path):
    path = tmp_path / "tanh.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), path)
    with pytest.raises(ReportInputError, match="Tanh"):
        load_network(str(path))


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
