"""`relusv gmw FILE` (and `python -m relusv gmw FILE`): results, JSON, and
user mistakes reported in one line with exit status 2, never a traceback.

The child process may use another BLAS thread count than this one, which can
change the rounding of products: results are compared to 1e-12 relative.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import relusv


def run(args, env, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "relusv", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def points(tmp_path, rng):
    x = rng.normal(size=(400, 3, 4))
    path = tmp_path / "points.npy"
    np.save(path, x)
    return x, path


def test_npy_text_output(points, subprocess_env):
    x, path = points
    out = run(["gmw", path], subprocess_env)
    assert out.returncode == 0, out.stderr
    r = relusv.gmw(x, return_details=True)
    line = out.stdout.strip()
    m = re.fullmatch(r"Gaussian mean width of 400 points in dimension 12: (\S+) ± (\S+) "
                     r"\(S = 100, trim = 0.1, seed = 0\)", line)
    assert m, line
    assert float(m.group(1)) == pytest.approx(r.estimate, rel=5e-6)  # printed with 6 digits
    assert float(m.group(2)) == pytest.approx(r.std_error, rel=5e-2)  # and 2 digits


def test_json_output_and_options(points, subprocess_env):
    x, path = points
    out = run(["gmw", path, "--json", "--samples", "300", "--seed", "7", "--trim", "0", "--spherical"],
              subprocess_env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    r = relusv.gmw(x, samples=300, seed=7, trim=0, spherical=True, return_details=True)
    for key in ("estimate", "std_error", "mean", "mean_std_error"):
        assert got[key] == pytest.approx(getattr(r, key), rel=1e-12), key
    assert (got["kind"], got["samples"], got["points"], got["dimension"], got["trim"], got["seed"]) == \
        ("spherical", 300, 400, 12, 0.0, 7)


def test_npz_with_array_x(tmp_path, rng, subprocess_env):
    x = rng.normal(size=(50, 6))
    np.savez(tmp_path / "data.npz", X=x, y=np.arange(50))
    out = run(["gmw", tmp_path / "data.npz", "--json"], subprocess_env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["estimate"] == pytest.approx(relusv.gmw(x), rel=1e-12)


def test_console_script(points, subprocess_env):
    script = shutil.which("relusv", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the relusv console script is not installed next to this interpreter")
    x, path = points
    out = subprocess.run([script, "gmw", str(path), "--json"], env=subprocess_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["estimate"] == pytest.approx(relusv.gmw(x), rel=1e-12)


def bad_files(tmp_path):
    (tmp_path / "text.npy").write_text("not an array\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    np.save(tmp_path / "vector.npy", np.arange(5.0))
    np.save(tmp_path / "nan.npy", np.array([[0.0, 1.0], [np.nan, 2.0]]))
    np.save(tmp_path / "complex.npy", np.ones((3, 2), dtype=complex))
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "noX.npz", A=np.ones((3, 2)))
    np.save(tmp_path / "norows.npy", np.ones((0, 4)))
    (tmp_path / "folder.npy").mkdir()
    return {
        "missing.npy": "no such file",
        "folder.npy": "no such file",
        "text.npy": "cannot read",
        "empty.npy": "cannot read",
        "objects.npy": "cannot read",
        "vector.npy": "1-D",
        "nan.npy": "row 1, column 0",
        "complex.npy": "complex",
        "noX.npz": "no array named 'X' \\(found: A\\)",
        "norows.npy": "no rows",
    }


def test_user_mistakes_exit_2_with_one_line(tmp_path, subprocess_env):
    for name, message in bad_files(tmp_path).items():
        out = run(["gmw", tmp_path / name], subprocess_env)
        assert out.returncode == 2, (name, out.stderr)
        assert out.stdout == "", name
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("relusv: error: "), (name, out.stderr)
        assert re.search(message, lines[0]), (name, lines[0])
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize("option,message", [(["--samples", "0"], "samples must be positive"),
                                            (["--trim", "0.7"], "trim must lie in"),
                                            (["--seed", "-1"], "seed must lie in")])
def test_bad_options_exit_2(points, subprocess_env, option, message):
    _, path = points
    out = run(["gmw", path, *option], subprocess_env)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_argparse_errors_exit_2(subprocess_env):
    for args in (["gmw"], ["gmw", "a.npy", "--samples", "many"], ["frobnicate"]):
        out = run(args, subprocess_env)
        assert out.returncode == 2 and "Traceback" not in out.stderr, args


def test_relative_path_and_help(points, subprocess_env):
    x, path = points
    out = run(["gmw", path.name, "--json"], subprocess_env, cwd=path.parent)
    assert out.returncode == 0 and json.loads(out.stdout)["file"] == path.name
    helptext = run(["gmw", "--help"], subprocess_env)
    assert helptext.returncode == 0 and "--samples" in helptext.stdout and "--json" in helptext.stdout
