"""Small files that declare or imply large arrays are refused before anything is materialised.

Cases: a state dict of about 2 kB holding a stride-0 expanded tensor (a view
of one element that a float64 copy would make 7.2 GB), a deflate bomb
``.npz`` (a few kB inflating far beyond the memory limit), a ``.npy`` header
declaring more data than the file holds. Through the API they raise
``MemoryLimitError`` / ``InvalidInputError``; through the CLI they exit 2 with
one line. The state dict is also refused under an address-space limit below
what materialising it would take, so the refusal happens before allocating.
"""
from __future__ import annotations

import resource
import subprocess
import sys

import numpy as np
import pytest
import relusv
from relusv.errors import InvalidInputError, MemoryLimitError

torch = pytest.importorskip("torch")


@pytest.fixture
def low_limit():
    relusv.set_memory_limit(8 << 20)
    yield 8 << 20
    relusv.set_memory_limit(None)


def run_cli(args, env, limit_as=None):
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    return subprocess.run([sys.executable, "-m", "relusv", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=180, preexec_fn=cap if limit_as else None)


def one_line_exit_2(out, needle):
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr, out.stderr


@pytest.fixture
def expanded_state_dict(tmp_path):
    """About 2 kB on disk: every tensor is a view of a one-element storage."""
    path = tmp_path / "expanded.pt"
    one = torch.zeros(1)
    torch.save({"0.weight": one.expand(30000, 30000), "0.bias": one.expand(30000), "1.weight": one.expand(2, 30000),
                "1.bias": torch.zeros(2)}, path)
    assert path.stat().st_size < 3000
    return path


@pytest.fixture
def data(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.zeros((4, 3)), y=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "mlp.npz", W0=np.ones((4, 3)), W1=np.ones((2, 4)))
    return tmp_path / "data.npz"


def test_expanded_tensor_state_dict_is_refused_before_materialising(expanded_state_dict, low_limit):
    from relusv.report.source import load_model

    with pytest.raises(MemoryLimitError, match=r"expanded\.pt: the tensors \(as float64\) would take "
                                               r"7,200,720,016 bytes"):
        load_model(str(expanded_state_dict))


def test_views_sharing_one_storage_count_once_each(tmp_path, low_limit):
    from relusv.report.source import load_model

    storage = torch.zeros(100_000)
    path = tmp_path / "shared.pt"
    torch.save({f"l{i}.weight": storage.view(1000, 100) for i in range(200)}, path)
    assert path.stat().st_size < 500_000   # one storage on disk
    with pytest.raises(MemoryLimitError, match="would take 160,000,000 bytes"):
        load_model(str(path))


def test_cli_refuses_the_expanded_state_dict_under_an_address_space_limit(expanded_state_dict, data,
                                                                           subprocess_env):
    # 6 GB of address space: enough for Python and torch (about 3.5 GB), not for the 7.2 GB copy.
    out = run_cli(["report", "--model", expanded_state_dict, "--data", data, "--out", data.parent / "r",
                   "--no-progress"], subprocess_env, limit_as=6 << 30)
    one_line_exit_2(out, "memory limit")
    assert not (data.parent / "r").exists()


@pytest.fixture
def bomb(tmp_path):
    """A .npz whose X inflates to 80 MB from about 80 kB."""
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, X=np.zeros((10_000_000 // 3, 3)), y=np.zeros(10_000_000 // 3, dtype=np.int64))
    assert path.stat().st_size < 200_000
    return path


def test_deflate_bomb_data_is_refused_in_the_api(bomb, low_limit):
    from relusv.report.data import load_data

    with pytest.raises(MemoryLimitError, match=r"bomb\.npz: array X would take 79,999,992 bytes"):
        load_data([str(bomb)])


@pytest.mark.parametrize("command", ["report", "gmw"])
def test_deflate_bomb_data_exits_2_in_the_cli(bomb, data, subprocess_env, command):
    env = dict(subprocess_env, RELUSV_MEMORY_LIMIT="8M")
    args = ["report", "--model", data.parent / "mlp.npz", "--data", bomb, "--out", data.parent / "r",
            "--no-progress"] if command == "report" else ["gmw", bomb]
    one_line_exit_2(run_cli(args, env), "memory limit")


def test_deflate_bomb_model_is_refused(tmp_path, low_limit):
    from relusv.report.source import load_model

    path = tmp_path / "model.npz"
    np.savez_compressed(path, W0=np.zeros((2000, 1000)), W1=np.zeros((2, 2000)))
    with pytest.raises(MemoryLimitError, match=r"model\.npz: array W0"):
        load_model(str(path))


def test_npy_header_declaring_more_than_the_file_holds(tmp_path):
    from relusv.report.data import load_data

    path = tmp_path / "x.npy"
    np.save(path, np.zeros((10, 3)))
    raw = path.read_bytes()
    header = raw[: raw.index(b"\n") + 1]
    forged = header.replace(b"(10, 3)", b"(99999, 3)").replace(b"   \n", b"\n")
    assert len(forged) == len(header)
    path.write_bytes(forged + raw[len(header):])
    np.save(tmp_path / "y.npy", np.zeros(10, dtype=np.int64))
    with pytest.raises(InvalidInputError, match=r"x\.npy declares 2,399,976 bytes of data but holds 240"):
        load_data([str(path), str(tmp_path / "y.npy")])


def test_a_negative_dimension_in_an_npy_header_is_named(tmp_path):
    """A hand-written header declaring shape (-5, 4) is refused from the header, naming the shape (NumPy's own
    message spoke of -20 elements and a file not fully written)."""
    from relusv._npyfile import check_npy_file

    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (-5, 4), }"
    header = header + " " * (118 - len(header)) + "\n"
    path = tmp_path / "neg.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + bytes(160))
    with pytest.raises(InvalidInputError, match=r"shape \(-5, 4\), which has a negative dimension"):
        check_npy_file(path, str(path))
