"""One whole curve of the benchmark's large layer, timed: wall and process time.

The layer is ``large`` of ``bench/relu_sv.py`` (1,024 x 1,024, He W, X = ReLU(G - 1),
N = 10,000, the same seed), run with relusv's defaults; prints the wall and
processor seconds (processor time shows the work on a shared machine), the mean
bound / t_k over the whole curve, the fit stride and how many k were fitted.

    .venv/bin/python bench/relu_sv_large.py                   # float32 (as relu_sv.py runs it)
    .venv/bin/python bench/relu_sv_large.py --dtype float64   # the same values in float64
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relusv  # noqa: E402
from relu_sv import RELUSV_SEED, SEED, make_layer, workloads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    w = next(w for w in workloads(False) if w.key == "large")
    W, b, X = (a.astype(args.dtype) for a in make_layer(w, SEED))
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    r = relusv.relu_singular_values(W, b, X, seed=RELUSV_SEED, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ratio = np.asarray(r.bound[1:]) / np.asarray(r.truncation_bound[1:])
    print(f"large {w.m} x {w.n}, N = {w.points}, {args.dtype}: {wall:.1f} s wall, {cpu:.1f} s processor time, "
          f"load average {load:.2f} before ({os.cpu_count()} cores)")
    print(f"mean bound / t_k {ratio.mean():.4f}; fit stride {r.fit_stride}; fitted k {int(np.count_nonzero(r.steps))} "
          f"of {len(r.ks)}; sources {dict(Counter(r.source))}")


if __name__ == "__main__":
    main()
