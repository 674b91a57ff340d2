"""The shared SVD of a wide weight: every pair against the leading pairs only, side by side in one run.

A bound curve over ``N`` points reads the singular pairs of ``k < rank(X W^T) <= N`` only
(MATH.md section 2), so ``relusv.WeightSVD(W, vectors=r)`` keeps every singular value but the
vectors of the ``r`` largest. Timed on a Gaussian ``m x n`` matrix (default ``2048 x 12544``, the
shape of VGG's ``25088 -> 4096`` classifier halved), float64, interleaved rounds (each round times
every method once), medians:

- ``numpy``: ``numpy.linalg.svd(W, full_matrices=False)`` (LAPACK ``?gesdd``, all pairs), the peer;
- ``all pairs``: ``relusv.WeightSVD(W)`` (``?gesdd`` with all pairs, OpenBLAS at one thread);
- ``leading``: ``relusv.WeightSVD(W, vectors=r)`` (``--vectors``, default 64);

NumPy runs at one BLAS thread too (threadpoolctl), so that the three do the same work on one core.
Printed: the medians, the ratios to ``leading``, and the largest difference of the values to NumPy's
relative to ``sigma_0``. The docs' promise "less than half the cost of all pairs on a wide layer" is
the ratio ``all pairs / leading`` above 2.

    .venv/bin/python bench/weight_svd.py [--rows 2048] [--columns 12544] [--vectors 64] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import relusv
from threadpoolctl import threadpool_limits


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--columns", type=int, default=12544)
    parser.add_argument("--vectors", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w = np.random.default_rng(0).standard_normal((args.rows, args.columns)) / np.sqrt(args.columns)
    times = {"numpy": [], "all pairs": [], "leading": []}
    errors = {"all pairs": 0.0, "leading": 0.0}
    with threadpool_limits(1):
        for _ in range(args.rounds):
            t, (_, reference, _) = timed(lambda: np.linalg.svd(w, full_matrices=False))
            times["numpy"].append(t)
            for name, vectors in (("all pairs", None), ("leading", args.vectors)):
                t, svd = timed(lambda: relusv.WeightSVD(w, vectors=vectors))
                times[name].append(t)
                errors[name] = max(errors[name], float(np.abs(svd.values - reference).max() / reference[0]))
                svd.close()
    median = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"W {args.rows} x {args.columns} float64, {args.vectors} leading pairs, {args.rounds} rounds, "
          f"one BLAS thread, load average {os.getloadavg()[0]:.2f}")
    print(f"{'method':<12}{'median':>10}{'/ leading':>11}{'values vs numpy':>17}")
    for name in times:
        error = f"{errors[name]:.1e}" if name in errors else "-"
        print(f"{name:<12}{median[name]:>9.2f}s{median[name] / median['leading']:>11.2f}{error:>17}")


if __name__ == "__main__":
    main()
