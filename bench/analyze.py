"""Wall time of relusv.torch.analyze: the built-in digits network, and an MLP of about 1M parameters.

- digits: the shipped 64-100-100-100-10 network on its 1,258 held-out images
  (42 misclassified: groups of 42), analyze's defaults (5 repeats, 100 GMW
  directions, ReLU bounds at 9 ranks per group with the library's step budget);
- large: an MLP 784-1024-200-100-10 (1.03M parameters) trained for one epoch
  on 60,000 synthetic points (bench/monitor.py's data), probe set of 2,000 points,
  groups capped at 500 points; with and without ReLU bounds.

Each case runs ``--repeats`` times; the median is printed with the per-run times.

    .venv/bin/python bench/analyze.py [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from relusv.torch import analyze
from torch import nn


def digits_case():
    from relusv.report.default import default_inputs

    model, data, _ = default_inputs()
    return model.module, data.x, data.y


def large_case(points: int, probe: int):
    from monitor import mlp, synthetic  # bench/monitor.py

    x, y = synthetic(points + probe, seed=0)
    torch.manual_seed(0)
    model = mlp((1024, 200, 100))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(0, points, 128):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x[i:i + 128]), y[i:i + 128]).backward()
        optimizer.step()
    return model, x[points:], y[points:]


def timed(label: str, repeats: int, fn) -> None:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        table = fn()
        times.append(time.perf_counter() - start)
    a = table.attrs
    print(f"{label:<44} median {statistics.median(times):7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)}; "
          f"{len(table)} layers, accuracy {a['accuracy']:.3f}, groups of {a['group_size']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--points", type=int, default=60_000, help="training points of the large model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, x, y = digits_case()
    timed("digits 64-100-100-100-10, 1,258 points", args.repeats,
          lambda: analyze(model, x, y, progress=False))
    timed("digits, relu_bounds=False", args.repeats, lambda: analyze(model, x, y, relu_bounds=False, progress=False))
    model, x, y = large_case(args.points, 2000)
    params = sum(p.numel() for p in model.parameters())
    timed(f"784-1024-200-100-10 ({params:,} par.), 2,000 points", args.repeats,
          lambda: analyze(model, x, y, progress=False))
    timed("  the same, relu_bounds=False", args.repeats, lambda: analyze(model, x, y, relu_bounds=False,
                                                                           progress=False))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
