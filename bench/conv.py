"""Convolutions: relusv against its peers, side by side in one run (MATH.md section 9).

Part 1, the exact singular values of a stride-1 circular convolution:

- 64 -> 64 channels, 3 x 3 kernel, 32 x 32 inputs (65,536 values), float64:
  ``relusv.conv_singular_values`` against the obvious NumPy peer,
  ``numpy.fft.fft2`` of the zero-padded kernel (all H W frequencies) plus a
  batched ``numpy.linalg.svd(compute_uv=False)`` of the 1,024 complex
  64 x 64 matrices, then a sort. The dense operator would be 65,536 x 65,536
  (32 GiB): it does not fit, so
- 16 -> 16 channels, 3 x 3, 16 x 16 inputs: the same two against the SVD of
  the dense 4,096 x 4,096 operator matrix (built with NumPy, not timed).

Times are medians over interleaved rounds (each round times every method
once); the values of every method are compared (max relative difference to
relusv). The load average is printed with the results.

Part 2 (``--part 2`` or all), the channel-rank ReLU bound curve of a
64 -> 64 3 x 3 conv over images, needs ``relusv.torch.relu_singular_values``.

Run: ``.venv/bin/python bench/conv.py`` (``--quick`` for a smoke run).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import relusv  # noqa: E402


def numpy_peer(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """fft2 of the zero-padded kernel per channel pair, batched SVD per frequency, sorted."""
    f = np.fft.fft2(kernel, s=(h, w), axes=(2, 3))            # (C_out, C_in, H, W), all frequencies
    values = np.linalg.svd(f.transpose(2, 3, 0, 1), compute_uv=False)
    return np.sort(values.ravel())[::-1]


def dense_operator(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """The circular operator as a dense matrix (rows: output pixels, columns: input pixels)."""
    c_out, c_in, kh, kw = kernel.shape
    a = np.zeros((c_out, h, w, c_in, h, w))
    p, q = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for dy in range(kh):
        for dx in range(kw):
            for o in range(c_out):
                a[o, p, q, :, (p + dy) % h, (q + dx) % w] += kernel[o, :, dy, dx]
    return a.reshape(c_out * h * w, c_in * h * w)


def timed(fn, *args):
    time.sleep(0.05)   # let OpenBLAS's spinning threads of the previous call settle
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def part1(quick: bool) -> None:
    print("== Part 1: exact singular values of a stride-1 circular convolution")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(2019)
    rounds = 3 if quick else 7
    cases = [("64 -> 64, 3 x 3, 32 x 32", (64, 64, 3, 3), 32, False),
             ("16 -> 16, 3 x 3, 16 x 16", (16, 16, 3, 3), 16, True)]
    if quick:
        cases[0] = ("32 -> 32, 3 x 3, 16 x 16 (quick)", (32, 32, 3, 3), 16, False)
    print("| case | relusv | NumPy fft + batched svd | dense operator SVD | NumPy / relusv | dense / relusv "
          "| max rel. difference |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, shape, size, with_dense in cases:
        kernel = rng.normal(scale=np.sqrt(2 / np.prod(shape[1:])), size=shape)
        times = {"relusv": [], "numpy": [], "dense": []}
        outputs = {}
        dense = dense_operator(kernel, size, size) if with_dense else None
        relusv.conv_singular_values(kernel, size, progress=False)   # warm-up
        for r in range(rounds):
            t, outputs["relusv"] = timed(lambda: relusv.conv_singular_values(kernel, size, progress=False))
            times["relusv"].append(t)
            t, outputs["numpy"] = timed(numpy_peer, kernel, size, size)
            times["numpy"].append(t)
            if dense is not None and r < 3:
                t, values = timed(lambda: np.linalg.svd(dense, compute_uv=False))
                outputs["dense"] = values[: outputs["relusv"].size]
                times["dense"].append(t)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        ref = outputs["relusv"]
        diff = max(float(np.max(np.abs(outputs[k] - ref)) / ref[0]) for k in outputs)
        dense_cell = fmt(med["dense"]) + f" ({len(times['dense'])} timed)" if "dense" in med else "does not fit (32 GiB)"
        dense_ratio = f"{med['dense'] / med['relusv']:.0f}" if "dense" in med else "-"
        print(f"| {name} | {fmt(med['relusv'])} | {fmt(med['numpy'])} | {dense_cell} | "
              f"{med['numpy'] / med['relusv']:.2f} | {dense_ratio} | {diff:.1e} |")
        if "32 x 32" in name:
            verdict = "met" if med["numpy"] >= med["relusv"] else "MISSED"
            print(f"[{verdict}] {name}: NumPy / relusv = {med['numpy'] / med['relusv']:.2f} >= 1")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--part", type=int, choices=(1, 2), help="run one part only")
    args = parser.parse_args()
    if args.part in (None, 1):
        part1(args.quick)
    if args.part in (None, 2):
        from conv_bounds import part2   # noqa: E402  (needs torch)
        part2(args.quick)


if __name__ == "__main__":
    main()
