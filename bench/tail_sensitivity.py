"""How far the default bound curve moves under rounding-level changes of its input, per rank.

Every bound relusv reports is the exact error of factors it returns, so any curve is certified; how
*tight* it is depends on which factors the candidates and fits reach, and that can depend on rounding.
On each suite layer of ``bench/relu_sv.py`` (not ``large``), the default curve of
``relusv.relu_singular_values`` (float32, every k) is computed

- for the layer as given, seeds 0 .. R-1 (the fits' mini-batch order), and
- for R copies of ``W`` with every entry moved by one unit in the last place (float32), up or down at
  random (seeded): a change at the level of rounding, seed 0,

and per layer the spread ``max / min`` over the runs is printed at every k: its median over k, its
maximum and where (as a fraction of the last k), and the mean of the curves' ratios to the first run.
A spread near 1 means the tightness is a property of the layer; a large one at single k means a
comparison at those k (against the peer, or between two versions of relusv) measures chance as much
as method.

    .venv/bin/python bench/tail_sensitivity.py [--runs 4] [--only he-uniform,gaussian]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import relusv
from relu_sv import make_layer, workloads


def curve(W, b, X, seed: int) -> np.ndarray:
    return np.asarray(relusv.relu_singular_values(W, b, X, seed=seed, progress=False).bound, dtype=np.float64)


def ulp_moved(W: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 7])
    up = rng.random(W.shape) < 0.5
    return np.where(up, np.nextafter(W, np.float32(np.inf)), np.nextafter(W, np.float32(-np.inf))).astype(W.dtype)


def spread(curves: list) -> np.ndarray:
    stack = np.stack(curves)
    top, low = stack.max(axis=0), stack.min(axis=0)
    keep = low > 1e-6 * stack[:, 0].max()        # ranks whose bound is not at rounding level
    out = np.ones(stack.shape[1])
    out[keep] = top[keep] / low[keep]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4, help="seeds and perturbed copies per layer (R)")
    parser.add_argument("--only", default="", help="comma-separated layer keys")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2 (a spread needs two runs of each kind)")
    only = {k for k in args.only.split(",") if k}
    print(f"{'layer':16s} {'change':10s} {'median':>7s} {'max':>7s} {'at k/K':>7s} {'mean ratio':>10s}  time")
    for w in workloads(quick=False):
        if w.large or (only and w.key not in only):
            continue
        W, b, X = make_layer(w, 0)
        start = time.perf_counter()
        base = curve(W, b, X, 0)
        runs = {"seed": [base] + [curve(W, b, X, s) for s in range(1, args.runs)],
                "1 ulp of W": [base] + [curve(ulp_moved(W, s), b, X, 0) for s in range(args.runs)]}
        seconds = time.perf_counter() - start
        for change, curves in runs.items():
            s = spread(curves)
            at = int(np.argmax(s))
            ratios = [float(np.mean(c[base > 0] / base[base > 0])) for c in curves[1:]]
            print(f"{w.key:16s} {change:10s} {statistics.median(s):7.3f} {s.max():7.3f} "
                  f"{at / max(1, s.size - 1):7.2f} {statistics.mean(ratios):10.4f}  {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
