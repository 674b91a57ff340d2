"""Every numeric argument of the C interface over its extremes gives a status or a valid result, never a crash.

The options structs ``relusv_relu_sv_options`` and ``relusv_conv_options`` (every field alone at every
extreme, then seeded random combinations) and the scalar arguments of the
other entries (``trim``, ``samples``, ``seed``, ranks, slopes, point counts)
are driven through ctypes with zero, subnormal, tiny, huge, infinite, NaN and
negative doubles and sizes 0, 1, 2^31 - 1, 2^63 - 1, 2^64 - 1 and their
neighbours. Each call must return a status of relusv.h (with a message) or a
finite, non-increasing curve of bounds. The cases run in a child process
(``option_sweep_child.py``) that prints each case before running it: a trap
(a Swift range check, SIGILL) or a crash would otherwise end pytest itself, and
here names the case.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("option_sweep_child.py")


def run_sweep(count: int, seed: int, threads: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, RELUSV_MEMORY_LIMIT="512M")
    return subprocess.run([sys.executable, str(CHILD), str(count), str(seed)], capture_output=True, text=True,
                          timeout=240, env=env)


@pytest.mark.parametrize("seed", [0, 1])
def test_extreme_options_and_scalars_never_crash(seed):
    done = run_sweep(60, seed, "1")
    lines = done.stdout.splitlines()
    last_case = next((line for line in reversed(lines) if line.startswith("CASE")), "no case")
    assert done.returncode == 0, f"exit {done.returncode} at {last_case}\n{done.stderr[-2000:]}"
    assert lines and lines[-1].startswith("DONE"), lines[-3:]
    results = [line for line in lines if line.startswith("RESULT")]
    assert len(results) == int(lines[-1].split()[1])
    # The sweep is not vacuous: ordinary values succeed, out-of-range ones are refused.
    assert any(line == "RESULT OK" for line in results)
    assert any("INVALID_ARGUMENT" in line for line in results)


def test_a_tiny_time_budget_fits_the_ends_only():
    import numpy as np
    import relusv

    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(40, 30)), rng.normal(size=(200, 30))
    for budget in (5e-21, 5e-324, 1e-300):
        r = relusv.relu_singular_values(w, X=x, time_budget=budget, threads=1, progress=False)
        assert np.isfinite(r.bound).all() and (np.diff(r.bound) <= 0).all()
        assert r.fit_stride >= 1 and r.fit_stride & (r.fit_stride - 1) == 0 and r.fit_stride <= 32
