"""``relusv report`` on untrusted and degenerate inputs: one line, exit status 2, nothing run, nothing oversized.

Each case is a file crafted to break a promise of the loaders: a pickle whose ``__reduce__`` names
``os.system``, a TorchScript archive whose class source holds a non-literal constant or declares sizes its
tensors do not have, and points that make every width zero.
"""
from __future__ import annotations

import os
import pickle
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")

from relusv import memory  # noqa: E402
from relusv.cli import main  # noqa: E402
from relusv.report.torchscript import load_module  # noqa: E402

MARKER = "relusv-untrusted-marker"


def _report(tmp_path, capsys, *args) -> tuple:
    status = main(["report", *args, "--quick", "--no-progress", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    return status, captured.err.strip().splitlines()


class _RunsCommand:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickle_naming_os_system_is_refused_naming_the_global(tmp_path, capsys):
    marker = tmp_path / MARKER
    model = tmp_path / "evil.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(3, 2)}, "x": _RunsCommand(marker)}, model)
    data = tmp_path / "data.npz"
    np.savez(data, X=np.zeros((4, 2)), y=np.array([0, 1, 2, 0]))
    status, err = _report(tmp_path, capsys, "--model", str(model), "--data", str(data))
    assert status == 2
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "system" in err[0] and "weights_only" not in err[0]   # the refused global, not torch's advice
    assert not marker.exists()


def _tampered(source, target, old: bytes, new: bytes) -> None:
    """A copy of the archive with ``old`` replaced by ``new`` in every code member holding it (torch names the
    member after the class, mangled when one process scripts the class twice: any member may hold it)."""
    changed = 0
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if "/code/" in info.filename and info.filename.endswith(".py") and old in data:
                data = data.replace(old, new)
                changed += 1
            zout.writestr(info, data)
    assert changed, f"no code member of {source} holds {old!r}"


@pytest.fixture()
def scripted_conv(tmp_path):
    import warnings

    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 8 * 8, 3))
    path = tmp_path / "conv.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net), str(path))
    return net, path


def test_torchscript_rebuild_keeps_conv_and_batchnorm_weights(scripted_conv):
    net, path = scripted_conv
    rebuilt = load_module(str(path))
    for key, value in net.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    assert not any(t.is_meta for t in rebuilt.state_dict().values())


@pytest.mark.parametrize("constant", [b"{[1]: 1}", b"{(1, 1), []}"])
def test_torchscript_constant_that_is_no_literal_is_one_line(tmp_path, capsys, scripted_conv, constant):
    _, path = scripted_conv
    bad = tmp_path / "bad.pt"
    _tampered(path, bad, b"stride : Final[Tuple[int, int]] = (1, 1)",
              b"stride : Final[Tuple[int, int]] = " + constant)
    data = tmp_path / "img.npz"
    np.savez(data, X=np.zeros((4, 1, 8, 8), dtype=np.float32), y=np.array([0, 1, 2, 0]))
    status, err = _report(tmp_path, capsys, "--model", str(bad), "--data", str(data))
    assert status == 2
    assert len(err) == 1 and "stride" in err[0]


def test_torchscript_sizes_declared_by_constants_are_not_allocated(tmp_path, capsys, scripted_conv):
    _, path = scripted_conv
    bad = tmp_path / "big.pt"
    # 65536 x 256 x 3 x 3 float32: 600 MB declared by the class constants, the archive's weight is 2 x 1 x 3 x 3
    _tampered(path, bad, b"out_channels : Final[int] = 2", b"out_channels : Final[int] = 65536")
    _tampered(bad, tmp_path / "big2.pt", b"in_channels : Final[int] = 1",
              b"in_channels : Final[int] = 256")
    data = tmp_path / "img.npz"
    np.savez(data, X=np.zeros((4, 1, 8, 8), dtype=np.float32), y=np.array([0, 1, 2, 0]))
    memory.set_memory_limit(64 << 20)
    try:
        import resource

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        status, err = _report(tmp_path, capsys, "--model", str(tmp_path / "big2.pt"), "--data", str(data))
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    finally:
        memory.set_memory_limit(None)
    assert status == 2
    assert len(err) == 1 and "size mismatch" in err[0]
    assert grown_kib < 200 * 1024


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_constant_points_give_a_report_not_a_crash(tmp_path, capsys, value):
    rng = np.random.default_rng(0)
    model = tmp_path / "mlp.npz"
    np.savez(model, W0=rng.normal(size=(6, 4)), b0=np.zeros(6), W1=rng.normal(size=(3, 6)), b1=np.zeros(3))
    data = tmp_path / "data.npz"
    np.savez(data, X=np.full((60, 4), value), y=rng.integers(0, 3, 60))
    status = main(["report", "--model", str(model), "--data", str(data), "--quick", "--no-progress",
                   "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "Traceback" not in captured.err
    assert "ratio n/a" in captured.out or "relative effect undefined" in captured.out
    assert (tmp_path / "out" / "index.html").is_file()


def test_pickle_marker_module_is_not_importable_from_a_checkpoint(tmp_path):
    """A plain ``pickle`` payload inside a ``torch.save`` zip: the weights-only reader refuses it."""
    from relusv.report.errors import ReportInputError
    from relusv.report.source import load_model

    marker = tmp_path / MARKER
    good = tmp_path / "sd.pt"
    torch.save({"0.weight": torch.zeros(3, 2)}, good)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, pickle.dumps(_RunsCommand(marker), 2) if info.filename.endswith("/data.pkl") else data)
    with pytest.raises(ReportInputError, match="system"):
        load_model(str(bad))
    assert not marker.exists()


def test_a_directory_given_as_the_model_is_named_as_such(tmp_path, capsys):
    x = np.zeros((10, 4))
    np.savez(tmp_path / "d.npz", X=x, y=np.arange(10) % 2)
    (tmp_path / "model.npz").mkdir()
    status, lines = _report(tmp_path, capsys, "--model", str(tmp_path / "model.npz"), "--data",
                            str(tmp_path / "d.npz"))
    assert status == 2 and len(lines) == 1 and "is a directory, not a model file" in lines[0]


def test_the_float64_copy_of_uint8_points_is_checked_against_the_memory_limit(tmp_path, capsys):
    """A uint8 X grows 8x as float64; the copy is refused before it is made when it exceeds the limit."""
    np.savez(tmp_path / "m.npz", W0=np.ones((3, 4096)), b0=np.zeros(3))
    np.savez(tmp_path / "d.npz", X=np.zeros((2048, 4096), np.uint8), y=np.arange(2048) % 3)
    memory.set_memory_limit(48 << 20)     # X itself: 8 MiB; as float64: 64 MiB
    try:
        status, lines = _report(tmp_path, capsys, "--model", str(tmp_path / "m.npz"), "--data",
                                str(tmp_path / "d.npz"))
    finally:
        memory.set_memory_limit(None)
    assert status == 2 and len(lines) == 1 and "points in float64" in lines[0] and "memory limit" in lines[0]


def test_a_torchscript_archive_given_as_weights_is_named_as_such(tmp_path, capsys, monkeypatch):
    """One line naming the archive for what it is, no torch warning, no advice to load with
    ``weights_only=False``."""
    import sys
    import warnings

    (tmp_path / "arch.py").write_text("import torch\n\n\ndef build():\n    return torch.nn.Sequential("
                                      "torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3))), tmp_path / "ts.pt")
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).random((20, 4)), y=np.arange(20) % 2)
    status, lines = _report(tmp_path, capsys, "--model", "arch:build", "--weights", str(tmp_path / "ts.pt"),
                            "--data", str(tmp_path / "d.npz"))
    assert status == 2 and len(lines) == 1, lines
    assert "is a TorchScript archive" in lines[0] and "weights_only=False" not in lines[0]
