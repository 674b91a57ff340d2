"""User mistakes get relusv's own errors (Python) and exit status 2 with one line (CLI)."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pytest
import relusv


def run_cli(args, env, python=sys.executable):
    return subprocess.run([python, "-m", "relusv", *args], env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_usage_error(out, needle=""):
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relusv: error:"), out.stderr
    assert needle in lines[0], lines[0]


def _npz_with(tmp_path, name, arrays, compress=True):
    path = tmp_path / name
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    return path


def test_cli_object_array_in_npz(tmp_path, subprocess_env):
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object))
    assert_one_line_usage_error(run_cli(["gmw", str(path)], subprocess_env), "objects.npz")


def test_cli_bad_crc_in_npz(tmp_path, subprocess_env):
    path = _npz_with(tmp_path, "crc.npz", {"X": np.arange(600.0).reshape(100, 6)}, compress=False)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("X.npy")
    data_start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[data_start + 200] ^= 0xFF  # payload changed, CRC kept
    path.write_bytes(bytes(raw))
    assert_one_line_usage_error(run_cli(["gmw", str(path)], subprocess_env), "crc.npz")


def test_cli_corrupt_deflate_stream(tmp_path, subprocess_env):
    path = _npz_with(tmp_path, "deflate.npz", {"X": np.random.default_rng(0).normal(size=(200, 6))})
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("X.npy")
    data_start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(data_start + 10, data_start + 60):
        raw[i] = 0xFF
    path.write_bytes(bytes(raw))
    assert_one_line_usage_error(run_cli(["gmw", str(path)], subprocess_env), "deflate.npz")


@pytest.mark.parametrize("array,needle", [
    (np.ones((5, 3), dtype=np.complex128), "complex"),
    (np.array([["a", "b"], ["c", "d"]]), "dtype"),
])
def test_cli_refuses_non_real_data(tmp_path, subprocess_env, array, needle):
    path = tmp_path / "data.npy"
    np.save(path, array)
    assert_one_line_usage_error(run_cli(["gmw", str(path)], subprocess_env), needle)


def test_cli_memory_refusal_is_a_usage_error(tmp_path, subprocess_env):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4, 3)))
    env = dict(subprocess_env, RELUSV_MEMORY_LIMIT="1M")
    assert_one_line_usage_error(run_cli(["gmw", str(path), "--samples", "100000"], env), "memory limit")


def test_complex_input_is_refused_in_python():
    with pytest.raises(relusv.InvalidTypeError, match="complex"):
        relusv.gmw(np.ones((4, 2), dtype=np.complex64))


@pytest.mark.parametrize("value", [2**64, 2**70, -1])
def test_integers_beyond_64_bits_are_refused_not_wrapped(value):
    w = np.eye(3)
    with pytest.raises(relusv.InvalidInputError, match="max_steps"):
        relusv.relu_singular_values(w, max_steps=value)
    with pytest.raises(relusv.InvalidInputError, match="samples"):
        relusv.gmw(np.eye(3), samples=value)
    with pytest.raises(relusv.InvalidInputError, match="seed"):
        relusv.gmw(np.eye(3), seed=value if value > 0 else -5)


def test_truncated_svd_rank_is_range_checked_before_numpy():
    with pytest.raises(relusv.InvalidInputError, match=r"rank must lie in \[0, 3\]"):
        relusv.truncated_svd(np.ones((3, 4)), 2**40)
    with pytest.raises(relusv.InvalidTypeError):
        relusv.truncated_svd(np.ones((3, 4)), 1.0)


def test_relu_fit_gradient_requires_points():
    w = np.ones((3, 2))
    with pytest.raises(relusv.InvalidTypeError, match="X is required"):
        relusv.relu_fit_gradient(w, None, None, np.ones((3, 1)), np.ones((1, 2)))


@pytest.mark.parametrize("error", [SystemExit(3), RuntimeError("from the callback"), GeneratorExit()])
def test_exceptions_raised_by_a_progress_callback_propagate_unchanged(error):
    def callback(done, total):
        raise error

    x = np.random.default_rng(0).normal(size=(5000, 40))
    with pytest.raises(type(error)) as info:
        relusv.gmw(x, samples=2**14, progress=callback)
    assert info.value is error
