"""Loading a model never runs code stored in the model file unless the caller opts in.

The archives here carry a scripted class whose ``__setstate__`` writes a file
(``torch.save``) when ``torch.jit.load`` restores it. Read as data (the
default), nothing is written and the archive is refused with a message naming
``--trust-model-code``; with the opt-in ``torch.jit.load`` runs and writes the
file, which shows that the payload is real.
"""
from __future__ import annotations

import pickle
import warnings
import zipfile
from typing import Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from relusv.report.errors import ReportInputError  # noqa: E402
from relusv.report.source import load_model  # noqa: E402


@torch.jit.script
class Payload:
    def __init__(self, path: str):
        self.path = path

    def __getstate__(self) -> Tuple[str, int]:
        return (self.path, 0)

    def __setstate__(self, state: Tuple[str, int]) -> None:
        self.path = state[0]
        torch.save(torch.ones(3), state[0])


class Linear(nn.Module):
    """A module named like torch's ``Linear``, hiding the payload."""

    def __init__(self, target: str):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 4))
        self.bias = nn.Parameter(torch.randn(2))
        self.payload = Payload(target)

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias)


class StatefulLinear(nn.Module):
    """Qualified exactly as torch's ``Linear``, with the payload in its own ``__setstate__``."""

    def __init__(self, target: str):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 4))
        self.bias = nn.Parameter(torch.randn(2))
        self.path = target

    def forward(self, x):
        return nn.functional.linear(x, self.weight, self.bias)

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, torch.Tensor, str, bool]:
        return (self.weight, self.bias, self.path, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, torch.Tensor, str, bool]) -> None:
        self.weight, self.bias, self.path, self.training = state[0], state[1], state[2], state[3]
        torch.save(torch.ones(3), state[2])


StatefulLinear.__module__, StatefulLinear.__name__, StatefulLinear.__qualname__ = \
    "torch.nn.modules.linear", "Linear", "Linear"


class Net(nn.Module):
    def __init__(self, target: str):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.payload = Payload(target)

    def forward(self, x):
        return self.fc(x)


def _script(module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(module), path)
    return path


@pytest.fixture(params=["named_linear", "torch_qualified_linear", "custom_module"])
def evil(request, tmp_path):
    target = tmp_path / "written_by_the_archive.pt"
    torch.manual_seed(0)
    module = {"named_linear": lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), Linear(str(target))),
              "torch_qualified_linear": lambda: nn.Sequential(StatefulLinear(str(target))),
              "custom_module": lambda: Net(str(target))}[request.param]()
    return _script(module, tmp_path / "evil.pt"), target, request.param


def test_a_payload_archive_writes_nothing_and_is_refused(evil):
    path, target, _ = evil
    with pytest.raises(ReportInputError, match="--trust-model-code"):
        load_model(str(path))
    assert not target.exists()


def test_the_cli_refuses_it_in_one_line(evil, capsys, tmp_path):
    from relusv.cli import main

    path, target, _ = evil
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 4)), y=np.array([0, 1, 0, 1]))
    code = main(["report", "--model", str(path), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "r"),
                 "--quick", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-model-code" in err and len(err.strip().splitlines()) == 1
    assert not target.exists() and not (tmp_path / "r").exists()


def test_with_the_opt_in_torch_jit_load_runs_as_before(evil):
    path, target, kind = evil
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if kind != "custom_module":   # accepted by its original_name, as before
            loaded = load_model(str(path), trust_model_code=True)
            assert "--trust-model-code" in loaded.notes[0]
            assert all(type(m).__name__ in ("Linear", "ReLU") for m in loaded.module)
        else:
            with pytest.raises(ReportInputError, match="is a Net"):
                load_model(str(path), trust_model_code=True)
    assert target.exists()   # the payload ran: the archive is really malicious


def test_an_archive_pickle_naming_any_other_global_is_refused_unrun(tmp_path):
    class Reduce:
        def __reduce__(self):
            return (open, (str(tmp_path / "opened_by_pickle"), "w"))

    path = tmp_path / "pickle.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(Reduce(), protocol=2))
        z.writestr("archive/code/__torch__.py", "")
        z.writestr("archive/constants.pkl", pickle.dumps((), protocol=2))
    with pytest.raises(ReportInputError, match=r"refers to io\.open: refused without --trust-model-code"):
        load_model(str(path))
    assert not (tmp_path / "opened_by_pickle").exists()


def test_standard_layers_are_rebuilt_with_their_constants_and_weights(tmp_path):
    from relusv.torch import DoubleLinear

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2,
                                    bias=False),
                          nn.BatchNorm2d(4, eps=1e-3, momentum=0.2), nn.GELU("tanh"), nn.AvgPool2d(2, 1, 1),
                          nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 5 * 4, 6), nn.ReLU(),
                          DoubleLinear(6, 5, 2, seed=3), nn.Tanh(), nn.Linear(5, 3), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    path = _script(model, tmp_path / "m.pt")
    loaded = load_model(str(path)).module.eval()
    assert [type(m) for m in loaded] == [type(m) for m in model]
    assert str(loaded) == str(model)   # every constructor argument, as the original
    x = torch.randn(3, 2, 8, 5)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_a_truncated_storage_is_refused(tmp_path):
    path = _script(nn.Sequential(nn.Linear(4, 3)), tmp_path / "m.pt")
    damaged = tmp_path / "damaged.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[:-4] if info.filename.endswith("/data/0") else data)
    with pytest.raises(ReportInputError, match="holds 44 bytes, its record declares 48"):
        load_model(str(damaged))


def test_an_expanded_tensor_in_an_archive_is_refused_before_materialising(tmp_path):
    import relusv
    from relusv.errors import MemoryLimitError

    linear = nn.Linear(30000, 30000, device="meta")
    linear.weight = nn.Parameter(torch.zeros(1).expand(30000, 30000))
    linear.bias = nn.Parameter(torch.zeros(30000))
    path = _script(nn.Sequential(linear), tmp_path / "expanded.pt")
    assert path.stat().st_size < 1_000_000
    relusv.set_memory_limit(1 << 30)
    try:
        with pytest.raises(MemoryLimitError, match="the tensors of the TorchScript archive would take"):
            load_model(str(path))
    finally:
        relusv.set_memory_limit(None)


def test_an_oversized_class_source_is_refused_unread(tmp_path):
    path = _script(nn.Sequential(nn.Linear(4, 3)), tmp_path / "m.pt")
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".py"):   # every class source (the Linear may be a mangled name)
                data += b" " * (20 << 20)
            dst.writestr(info.filename, data)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ReportInputError, match="declares 20,97.* bytes; relusv reads at most 16,777,216"):
        load_model(str(bomb))
