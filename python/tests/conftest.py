"""Shared fixtures and exact reference values for the relusv tests.

Reference values come from MATH.md section 4 and are computed here
independently of the library (NumPy/SciPy), never copied from its output.
"""
from __future__ import annotations

import itertools
import math
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import relusv

REPO = Path(__file__).resolve().parents[2]


def segment_width(a: np.ndarray) -> float:
    """w({-a, a}) = 2 ||a|| sqrt(2 / pi)."""
    return 2.0 * float(np.linalg.norm(a)) * math.sqrt(2.0 / math.pi)


def cube_vertices(n: int) -> np.ndarray:
    """The 2^n vertices of {-1, 1}^n, one per row."""
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def cube_width(n: int) -> float:
    """w({-1, 1}^n) = 2 n sqrt(2 / pi)."""
    return 2.0 * n * math.sqrt(2.0 / math.pi)


def c_n(n: int) -> float:
    """E||g|| = sqrt(2) Gamma((n+1)/2) / Gamma(n/2) for g ~ N(0, I_n), in 40-digit arithmetic."""
    import mpmath

    with mpmath.workdps(40):
        return float(mpmath.sqrt(2) * mpmath.gamma(mpmath.mpf(n + 1) / 2) / mpmath.gamma(mpmath.mpf(n) / 2))


def relusv_directions(dimension: int, samples: int, seed: int, dtype: str = "float64") -> np.ndarray:
    """The S x n Gaussian directions relusv draws for (dimension, samples, seed).

    Read through the public streaming API: for the single point e_i the
    running maximum (= minimum) of <g_j, e_i> is exactly g_ji.
    """
    g = np.empty((samples, dimension))
    for i in range(dimension):
        acc = relusv.GMWAccumulator(dimension, samples=samples, seed=seed, dtype=dtype)
        acc.update(np.eye(dimension, dtype=dtype)[i:i + 1])
        hi, lo = acc.extremes
        assert np.array_equal(hi, lo)
        g[:, i] = hi
    return g


def closed_form_widths(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    """max_i <g_j, x_i> - min_i <g_j, x_i> for each row g_j (NumPy)."""
    p = g @ np.asarray(x, dtype=np.float64).T
    return p.max(axis=1) - p.min(axis=1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


@pytest.fixture(scope="session")
def subprocess_env() -> dict:
    """Environment for child Python processes: the same interpreter and library."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


@pytest.fixture(scope="session")
def python() -> str:
    return sys.executable


def default_sigint() -> None:
    """``preexec_fn`` of children that the tests interrupt: a shell runs
    background jobs with SIGINT ignored, the child would inherit that and
    Python would then install no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)



def pytest_sessionfinish(session, exitstatus):
    """Under CI (CI=true) the set-up installs every optional tool, so a skip
    (of a test or of a whole module) would only hide a broken install: fail."""
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"{len(skipped)} test(s) or module(s) skipped under CI: failing the run", red=True)
        session.exitstatus = 1


def trained(model, x, y, steps: int = 60, lr: float = 2e-2):
    """``model`` (torch) after ``steps`` full-batch Adam steps at ``lr`` on the cross-entropy of ``(x, y)``."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module: models this small gain nothing from
    threads, and on a busy machine thread hand-offs dominate."""
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
