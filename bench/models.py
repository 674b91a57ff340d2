"""relusv.torch.analyze on the networks people train, timed beside the model's own work.

torchvision's resnet18, vgg11_bn, mobilenet_v2 and densenet121 (definitions only,
untrained, 10 classes), at 32x32 with ``--points`` probe images (default 512),
labels drawn at random so that both groups exist. Per model the script prints,
as medians over ``--repeats`` runs:

- ``forward``: the model's own forward passes over the probe set (batches of 256);
- ``svd``: one SVD (singular values only, float64) of every weight's kernel matrix
  ``(C_out, C_in/groups * kh * kw)``, as a weight-only spectral tool computes;
- ``analyze``: ``relusv.torch.analyze`` with its defaults;
- ``no bounds``: the same with ``relu_bounds=False``;

and the ratios ``analyze / (forward + svd)`` and ``no bounds / forward``. The
targets are at most 10x and 3x, and ``analyze`` at most 60 s per model. Below each
row: the size of the ``relu_bounds=False`` table's Holm family and the count of
relabellings drawn for it.

``--profile N`` prints, per model, the N functions of relusv with the largest
cumulative time in the ``relu_bounds=False`` call (cProfile): what dominates.

    .venv/bin/python bench/models.py [--models resnet18,vgg11_bn] [--points 512] [--repeats 1] [--profile 12]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time

import numpy as np
import torch
import torchvision
from relusv.torch import analyze
from torch import nn

MODELS = ("resnet18", "vgg11_bn", "mobilenet_v2", "densenet121")


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(num_classes=10).eval()


def probe(points: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(points, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (points,), generator=generator)
    return x, y


def forward_time(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(x), 256):
            model(x[i:i + 256])
    return time.perf_counter() - start


def svd_time(model: nn.Module) -> float:
    start = time.perf_counter()
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            weight = module.weight.detach().double().numpy()
            np.linalg.svd(weight.reshape(weight.shape[0], -1), compute_uv=False)
    return time.perf_counter() - start


def median_time(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--points", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-bounds-only", action="store_true", help="time analyze with relu_bounds=False only")
    parser.add_argument("--profile", type=int, default=0, help="print the N relusv functions with most cumulative "
                                                               "time in the relu_bounds=False call")
    args = parser.parse_args()
    x, y = probe(args.points)
    print(f"torch threads {torch.get_num_threads()}, {args.points} probe points at 32x32, medians of {args.repeats}")
    header = f"{'model':<14}{'layers':>7}{'forward':>9}{'svd':>8}{'analyze':>9}{'no bounds':>10}"
    print(header + f"{'analyze/(fw+svd)':>18}{'no bounds/fw':>14}")
    for name in args.models.split(","):
        model = build(name)
        forward = statistics.median(forward_time(model, x) for _ in range(max(3, args.repeats)))
        svd = statistics.median(svd_time(model) for _ in range(max(3, args.repeats)))
        table = None

        def no_bounds():
            nonlocal table
            table = analyze(model, x, y, relu_bounds=False, progress=False)

        plain = median_time(args.repeats, no_bounds)
        full = float("nan") if args.no_bounds_only else median_time(
            args.repeats, lambda: analyze(model, x, y, progress=False))
        print(f"{name:<14}{len(table):>7}{forward:>8.2f}s{svd:>7.2f}s{full:>8.1f}s{plain:>9.1f}s"
              f"{full / (forward + svd):>18.1f}{plain / forward:>14.1f}", flush=True)
        print(f"{'':<14}no bounds: {table.attrs['family']} comparisons, "
              f"{table.attrs['design']['permutations']} permutations", flush=True)
        if args.profile:
            profiled(args.profile, lambda: analyze(model, x, y, relu_bounds=False, progress=False))


def profiled(count: int, fn) -> None:
    """Runs ``fn`` under cProfile and prints the ``count`` relusv functions with the largest cumulative time."""
    profile = cProfile.Profile()
    profile.runcall(fn)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats("relusv/", count)
    lines = [line for line in out.getvalue().splitlines() if "relusv/" in line]
    print("  cumulative s  calls  function (relu_bounds=False, profiled)")
    for line in lines[:count]:
        parts = line.split(None, 5)
        print(f"  {float(parts[3]):12.2f}  {parts[0]:>5}  {parts[5].split('relusv/')[-1]}")


if __name__ == "__main__":
    main()
