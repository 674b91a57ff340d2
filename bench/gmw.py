"""Gaussian mean width: relusv against its peers, side by side in one run.

For S = 100 Gaussian directions and the paper's estimator (mean trimmed by
10 % at each end) on three shapes: 1,000 x 5 (the paper's example),
10,000 x 784 float64 and 100,000 x 1,000 float32. Peers:

- the paper's method: one ``scipy.optimize.linprog`` (HiGHS) per sample over
  conv(K) - conv(K) (variables: two sets of convex weights), trimmed mean.
  Where 100 LPs would take long, a few are timed and the median per LP is
  multiplied by 100; the table says how many were timed;
- the NumPy closed form: draw G, ``P = G @ X.T``, row max - min, ``trim_mean``;
- a bare NumPy GEMM ``G @ X.T`` of the same shape, G drawn beforehand: the
  roofline, since every method needs at least this product.

Times are medians of several repetitions, taken in interleaved rounds (each
round times every method once) so that changes in the machine's load affect
all methods alike, with a short pause before each call (OpenBLAS worker
threads keep spinning for a while after a call and would otherwise slow down
the next method). The load average is printed with the results.

Peak extra memory is measured in a fresh process per method and shape: the
high-water mark of the resident set (VmHWM, reset through
/proc/self/clear_refs) during one call, minus the resident set before it
(the data, the libraries and a warm-up call on a small input are in the
baseline). It includes the BLAS packing buffers. The engine's own scratch is
also computed from its block size: S x n directions plus S x block products,
with block = 2^20 / S rows.

Run: ``make bench`` (or ``.venv/bin/python bench/gmw.py``; ``--quick`` for a
short smoke run).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linprog
from scipy.stats import trim_mean

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import relusv  # noqa: E402

SAMPLES = 100
TRIM = 0.1
SCRATCH_ELEMENTS = 1 << 20  # WidthAccumulator.scratchBudget: S x block products


@dataclass(frozen=True)
class Shape:
    name: str
    rows: int
    cols: int
    dtype: str
    repetitions: int
    lp_samples: int  # LPs timed (all S for the paper's shape)

    def data(self) -> np.ndarray:
        return np.random.default_rng(2020).standard_normal((self.rows, self.cols), dtype=np.dtype(self.dtype))


SHAPES = [
    Shape("1,000 x 5 (paper)", 1_000, 5, "float64", 30, SAMPLES),
    Shape("10,000 x 784", 10_000, 784, "float64", 15, 5),
    Shape("100,000 x 1,000", 100_000, 1_000, "float32", 15, 3),
]


# ------------------------------------------------------------------ methods

def run_relusv(x: np.ndarray) -> float:
    return relusv.gmw(x, samples=SAMPLES, seed=0, trim=TRIM, progress=False)


def directions(x: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((SAMPLES, x.shape[1]), dtype=x.dtype)


def run_numpy_closed_form(x: np.ndarray) -> float:
    p = directions(x) @ x.T
    return float(trim_mean(p.max(axis=1) - p.min(axis=1), TRIM))


def run_bare_gemm(x: np.ndarray, g: np.ndarray) -> None:
    g @ x.T


def lp_width(g: np.ndarray, x: np.ndarray, a_eq: np.ndarray) -> float:
    """The paper's LP for one direction: max <g, u - v>, u, v in conv(K)."""
    s = x @ g
    res = linprog(-np.concatenate([s, -s]).astype(np.float64), A_eq=a_eq, b_eq=[1.0, 1.0], bounds=(0, None),
                  method="highs")
    if res.status != 0:
        raise RuntimeError(res.message)
    return -res.fun


def simplex_constraints(n_points: int) -> np.ndarray:
    a_eq = np.zeros((2, 2 * n_points))
    a_eq[0, :n_points] = 1
    a_eq[1, n_points:] = 1
    return a_eq


# ------------------------------------------------------------------ timing

def median_times(methods: dict, repetitions: int) -> dict:
    """Median seconds per method over interleaved rounds, after one warm-up call each."""
    for fn in methods.values():
        fn()
    times = {name: [] for name in methods}
    for _ in range(repetitions):
        for name, fn in methods.items():
            time.sleep(0.3)
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def time_lp(x: np.ndarray, count: int) -> tuple[float, float]:
    """Seconds for S LPs (measured, or extrapolated from `count`), and the
    largest relative gap between the LP values and the closed form."""
    a_eq = simplex_constraints(x.shape[0])
    g = directions(x, seed=1)[:count]
    per_lp, gap = [], 0.0
    for gj in g:
        t = time.perf_counter()
        value = lp_width(gj, x, a_eq)
        per_lp.append(time.perf_counter() - t)
        p = x.astype(np.float64) @ gj.astype(np.float64)
        gap = max(gap, abs(value - (p.max() - p.min())) / (p.max() - p.min()))
    if count == SAMPLES:
        return sum(per_lp), gap
    return statistics.median(per_lp) * SAMPLES, gap


# ------------------------------------------------------------------ memory

MEMORY_METHODS = ("relusv", "numpy closed form", "bare GEMM")


def status_kib() -> dict:
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    return values


def measure_memory_here(shape: Shape, method: str) -> float:
    """MiB of peak resident memory above the baseline during one call."""
    x = shape.data()
    small = x[:64].copy()
    g = directions(x)
    call = {"relusv": lambda a: run_relusv(a), "numpy closed form": lambda a: run_numpy_closed_form(a),
            "bare GEMM": lambda a: run_bare_gemm(a, g if a is x else directions(a))}[method]
    call(small)  # load and initialise the libraries
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    before = status_kib()["VmRSS"]
    call(x)
    return (status_kib()["VmHWM"] - before) / 1024


def measure_memory(shape: Shape, method: str) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory", shape.name, method], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


def engine_scratch_mib(shape: Shape) -> float:
    itemsize = np.dtype(shape.dtype).itemsize
    block = max(64, SCRATCH_ELEMENTS // SAMPLES)
    return (SAMPLES * shape.cols + SAMPLES * min(block, shape.rows)) * itemsize / 2**20


# ------------------------------------------------------------------ report

def blas_description() -> str:
    import ctypes

    lines = [f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '<unset>')}, "
             f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '<unset>')}, "
             f"{os.cpu_count()} CPUs"]
    try:
        system = ctypes.CDLL("libopenblas.so.0")
        system.openblas_get_config.restype = ctypes.c_char_p
        system.openblas_get_corename.restype = ctypes.c_char_p
        lines.append(f"relusv BLAS: {system.openblas_get_config().decode()} (core {system.openblas_get_corename().decode()})")
    except (OSError, AttributeError):
        pass
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    core = "?"
    try:  # NumPy's bundled OpenBLAS, already loaded by NumPy
        lib_dir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
        bundled = ctypes.CDLL(str(next(lib_dir.glob("libscipy_openblas*.so"))))
        bundled.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
        core = bundled.scipy_openblas_get_corename64_().decode()
    except (OSError, StopIteration, AttributeError):
        pass
    lines.append(f"NumPy BLAS: {blas.get('name', '?')} {blas.get('version', '')} (core {core})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions, for a smoke run")
    parser.add_argument("--memory", nargs=2, metavar=("SHAPE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory:
        shape = next(s for s in SHAPES if s.name == args.memory[0])
        print(measure_memory_here(shape, args.memory[1]))
        return 0

    print(f"relusv {relusv.__version__}, NumPy {np.__version__}, S = {SAMPLES}, trim = {TRIM}")
    print(blas_description())
    print("load average at start: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    rows, checks = [], []
    for shape in SHAPES:
        reps = 2 if args.quick else shape.repetitions
        lp_count = min(shape.lp_samples, 2) if args.quick else shape.lp_samples
        x = shape.data()
        g = directions(x)
        print(f"\n{shape.name} {shape.dtype}: timing ...", flush=True)
        t = median_times({"relusv": lambda: run_relusv(x), "numpy": lambda: run_numpy_closed_form(x),
                          "gemm": lambda: run_bare_gemm(x, g)}, reps)
        t_relusv, t_numpy, t_gemm = t["relusv"], t["numpy"], t["gemm"]
        t_lp, lp_gap = time_lp(x, lp_count)
        w_relusv = relusv.gmw(x, samples=SAMPLES, seed=0, trim=TRIM, return_details=True)
        w_numpy = run_numpy_closed_form(x)
        memory = {m: measure_memory(shape, m) for m in MEMORY_METHODS}
        row = dict(shape=shape.name, dtype=shape.dtype, relusv=t_relusv, numpy=t_numpy, gemm=t_gemm, lp=t_lp,
                   lp_timed=lp_count, lp_gap=lp_gap, w_relusv=w_relusv.estimate, se_relusv=w_relusv.std_error,
                   w_numpy=w_numpy, memory=memory, scratch=engine_scratch_mib(shape))
        rows.append(row)
        print(json.dumps(row))
        if shape.cols > 5:
            checks.append((f"{shape.name}: relusv / bare GEMM = {t_relusv / t_gemm:.2f} <= 1.15", t_relusv / t_gemm <= 1.15))
            checks.append((f"{shape.name}: relusv / NumPy closed form = {t_relusv / t_numpy:.2f} <= 1", t_relusv <= t_numpy))
        else:
            checks.append((f"{shape.name}: LP / relusv = {t_lp / t_relusv:,.0f} >= 1,000", t_lp / t_relusv >= 1000))

    print("\n| shape | relusv | NumPy closed form | bare GEMM | LP method (paper) | relusv / GEMM "
          "| NumPy / relusv | LP / relusv | peak extra memory: relusv (engine scratch) / NumPy / GEMM |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lp_note = "" if r["lp_timed"] == SAMPLES else f" ({r['lp_timed']} timed)"
        m = r["memory"]
        print(f"| {r['shape']} {r['dtype']} | {fmt(r['relusv'])} | {fmt(r['numpy'])} | {fmt(r['gemm'])} "
              f"| {fmt(r['lp'])}{lp_note} | {r['relusv'] / r['gemm']:.2f} | {r['numpy'] / r['relusv']:.2f} "
              f"| {r['lp'] / r['relusv']:,.0f} | {m['relusv']:.1f} MiB ({r['scratch']:.1f}) / "
              f"{m['numpy closed form']:.1f} MiB / {m['bare GEMM']:.1f} MiB |")
    print("\nestimates (different directions, so they agree statistically):")
    for r in rows:
        print(f"  {r['shape']}: relusv {r['w_relusv']:.4f} ± {r['se_relusv']:.4f}, NumPy {r['w_numpy']:.4f}; "
              f"LP = closed form to {r['lp_gap']:.1e} (relative)")
    print("load average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print("\ntargets:")
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    return 0


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


if __name__ == "__main__":
    raise SystemExit(main())
