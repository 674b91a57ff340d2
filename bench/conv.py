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

Part 3, grouped, depthwise and strided circular convolutions of real layer
sizes (ResNet 512 -> 512 3 x 3 on 8 x 8, a MobileNetV2 depthwise 3 x 3 on
96 channels of 32 x 32, a stride-2 128 -> 256 3 x 3 on 16 x 16):
``relusv.conv_singular_values(weight, n, groups=G, stride=s)`` against NumPy
(``fft2`` of the zero-padded kernel, the ``s^2`` aliased frequencies of each
output frequency stacked into one block per group, batched SVD, sort).

Part 2, the channel-rank ReLU bound curve (MATH.md section 9) of a
64 -> 64 3 x 3 conv (padding 1, He-initialised, bias N(0, 0.1^2)) over 256
images of 16 x 16 (uniform in [-1, 1], float32; 65,536 patches of 576):
``relusv.torch.relu_singular_values`` (whole curve, k = 0..63, defaults)
against the paper's procedure ported to convolutions (``ConvPeer``): for each
k an independent Adam fit (lr 1e-3, full batch) of a 3 x 3 conv to k channels
followed by a 1 x 1 conv, started from the truncated SVD of K_mat, loss
``sum ||ReLU(A_L x + b) - ReLU(A_K x + b)||^2`` with conv2d, evaluated every
10 steps, the paper notebook's early stopping (bench/paper_peer.py), bound =
the max over images of the float64 error of the best evaluated factors. The
peer runs at one k drawn at random (seeded) from each block of
``--peer-block`` consecutive k >= 1, and its whole-curve time is extrapolated
(63 / fits x the time of those fits). relusv's bounds are recomputed with
conv2d in float64 from its factors at the sampled k.

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
             ("16 -> 16, 3 x 3, 16 x 16", (16, 16, 3, 3), 16, not quick)]
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
            if dense is not None and r == 0:   # minutes per SVD: timed once
                t, values = timed(lambda: np.linalg.svd(dense, compute_uv=False))
                outputs["dense"] = values[: outputs["relusv"].size]
                times["dense"].append(t)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        ref = outputs["relusv"]
        diff = max(float(np.max(np.abs(outputs[k] - ref)) / ref[0]) for k in outputs)
        dense_cell = fmt(med["dense"]) + f" ({len(times['dense'])} timed)" if "dense" in med else \
            ("skipped (--quick)" if size == 16 else "does not fit (32 GiB)")
        dense_ratio = f"{med['dense'] / med['relusv']:.0f}" if "dense" in med else "-"
        print(f"| {name} | {fmt(med['relusv'])} | {fmt(med['numpy'])} | {dense_cell} | "
              f"{med['numpy'] / med['relusv']:.2f} | {dense_ratio} | {diff:.1e} |")
        if "32 x 32" in name:
            verdict = "met" if med["numpy"] >= med["relusv"] else "MISSED"
            print(f"[{verdict}] {name}: NumPy / relusv = {med['numpy'] / med['relusv']:.2f} >= 1")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


def numpy_grouped_peer(kernel: np.ndarray, h: int, w: int, groups: int, s: int) -> np.ndarray:
    """The blocks (1 / s) [F(u' + j H / s, v' + l W / s)]_{j, l} per group from fft2, batched SVD, sorted."""
    c_out, c_in_group = kernel.shape[:2]
    f = np.fft.fft2(kernel, s=(h, w)).reshape(groups, c_out // groups, c_in_group, s, h // s, s, w // s)
    blocks = f.transpose(0, 4, 6, 1, 3, 5, 2).reshape(groups, h // s, w // s, c_out // groups, -1) / s
    return np.sort(np.linalg.svd(blocks, compute_uv=False).ravel())[::-1]


def part3(quick: bool) -> None:
    print("== Part 3: grouped, depthwise and strided circular convolutions of real layer sizes")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(18)
    rounds = 1 if quick else 3
    cases = [("512 -> 512, 3 x 3, 8 x 8 (ResNet)", (512, 512, 3, 3), 8, 1, 1),
             ("depthwise 96, 3 x 3, 32 x 32 (MobileNetV2)", (96, 1, 3, 3), 32, 96, 1),
             ("128 -> 256, 3 x 3, stride 2, 16 x 16", (256, 128, 3, 3), 16, 1, 2)]
    if quick:
        cases[0] = ("128 -> 128, 3 x 3, 8 x 8 (quick)", (128, 128, 3, 3), 8, 1, 1)
    print("| case | relusv | NumPy fft + batched svd | NumPy / relusv | max rel. difference |")
    print("|---|---:|---:|---:|---:|")
    for name, shape, size, groups, stride in cases:
        kernel = rng.normal(scale=np.sqrt(2 / np.prod(shape[1:])), size=shape)
        times = {"relusv": [], "numpy": []}
        for _ in range(rounds):
            t, ours = timed(lambda: relusv.conv_singular_values(kernel, size, groups=groups, stride=stride,
                                                                progress=False))
            times["relusv"].append(t)
            t, peer = timed(numpy_grouped_peer, kernel, size, size, groups, stride)
            times["numpy"].append(t)
        med = {k: statistics.median(v) for k, v in times.items()}
        diff = float(np.max(np.abs(peer - ours)) / ours[0])
        print(f"| {name} | {fmt(med['relusv'])} | {fmt(med['numpy'])} | {med['numpy'] / med['relusv']:.2f} | "
              f"{diff:.1e} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


class ConvPeer:
    """The paper's procedure on a convolution: Adam on a rank-k factorised conv2d, one fit per k."""

    def __init__(self, conv, x, dtype=None):
        import torch
        from torch.nn import functional as F

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from paper_peer import LEARNING_RATE, MAX_STEPS, should_stop

        self.torch, self.F, self.should_stop = torch, F, should_stop
        self.lr, self.max_steps = LEARNING_RATE, MAX_STEPS
        self.conv, self.x = conv, x
        self.kernel = conv.weight.detach()
        self.bias = conv.bias.detach()
        self.c_out = self.kernel.shape[0]
        with torch.no_grad():
            self.y = torch.relu(self._apply(self.kernel))
            self.u, self.s, self.vh = torch.linalg.svd(self.kernel.reshape(self.c_out, -1), full_matrices=False)

    def _apply(self, kernel, x=None):
        return self.F.conv2d(self.x if x is None else x, kernel, self.bias, self.conv.stride, self.conv.padding)

    def bound(self, kernel64) -> float:
        """max over images of ||ReLU(A_K x + b) - ReLU(A_L x + b)||, in float64."""
        torch, F = self.torch, self.F
        x, b = self.x.double(), self.bias.double()
        with torch.no_grad():
            e = torch.relu(F.conv2d(x, self.kernel.double(), b, self.conv.stride, self.conv.padding)) - \
                torch.relu(F.conv2d(x, kernel64, b, self.conv.stride, self.conv.padding))
        return float(e.flatten(1).norm(dim=1).max())

    def fit(self, k: int):
        torch, F = self.torch, self.F
        start = time.perf_counter()
        root = self.s[:k].sqrt()
        w1 = (self.u[:, :k] * root).reshape(self.c_out, k, 1, 1).clone().requires_grad_(True)
        w2 = (root[:, None] * self.vh[:k]).reshape(k, *self.kernel.shape[1:]).clone().requires_grad_(True)
        optimiser = torch.optim.Adam([w1, w2], lr=self.lr)
        losses, best_loss, best, step = [], float("inf"), None, 0
        while True:
            optimiser.zero_grad(set_to_none=True)
            z = F.conv2d(F.conv2d(self.x, w2, None, self.conv.stride, self.conv.padding), w1, self.bias)
            loss = (torch.relu(z) - self.y).square().sum()
            if step % 10 == 0:
                value = loss.item()
                losses.append(value)
                if value < best_loss:
                    best_loss, best = value, (w1.detach().clone(), w2.detach().clone())
                if self.should_stop(losses) or step >= self.max_steps:
                    break
            loss.backward()
            optimiser.step()
            step += 1
        l_mat = best[0].double().reshape(self.c_out, k) @ best[1].double().reshape(k, -1)
        return self.bound(l_mat.reshape(self.kernel.shape)), step, time.perf_counter() - start


def part2(quick: bool, peer_block: int) -> None:
    import torch
    from relusv.torch import relu_singular_values
    from torch import nn

    print("== Part 2: channel-rank ReLU bound curve of a convolution")
    c, size, images = (16, 8, 64) if quick else (64, 16, 256)
    if quick:
        peer_block = min(peer_block, 8)
    torch.manual_seed(2020)
    conv = nn.Conv2d(c, c, 3, padding=1)
    with torch.no_grad():
        conv.weight.normal_(0, float(np.sqrt(2 / (c * 9))))
        conv.bias.normal_(0, 0.1)
    x = torch.rand(images, c, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    print(f"{c} -> {c} channels, 3 x 3, padding 1, {images} images of {size} x {size}: "
          f"{images * size * size:,} patches of {c * 9}; load average {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    ours = relu_singular_values(conv, x, return_factors=True, seed=0, progress=False)
    relusv_seconds = time.perf_counter() - start
    print(f"relusv whole curve (k = 0..{c - 1}): {relusv_seconds:.1f} s, fit_stride {ours.fit_stride}")
    rng = np.random.default_rng(7)
    ks = [int(rng.integers(lo, min(lo + peer_block, c))) for lo in range(1, c, peer_block)]
    torch.set_num_threads(1)   # torch's spinning OpenMP threads are slower on the busy 2-core machine
    peer = ConvPeer(conv, x)
    print("| k | sigma_k | peer bound | relusv bound (recomputed) | relusv / peer | peer steps | peer time |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    ratios, peer_seconds = [], 0.0
    kernel = conv.weight.detach()
    for k in ks:
        bound, steps, seconds = peer.fit(k)
        peer_seconds += seconds
        u, v = ours.factors[k]
        recomputed = peer.bound(torch.from_numpy(u @ v).reshape(kernel.shape))
        assert ours.bound[k] >= recomputed * (1 - 1e-6), (k, ours.bound[k], recomputed)
        ratios.append(ours.bound[k] / bound)
        print(f"| {k} | {ours.sigma[k]:.3f} | {bound:.4f} | {ours.bound[k]:.4f} ({recomputed:.4f}) | "
              f"{ratios[-1]:.3f} | {steps} | {seconds:.1f} s |", flush=True)
    extrapolated = peer_seconds * (c - 1) / len(ks)
    excess = max(ratios) - 1
    print(f"peer: {len(ks)} fits in {peer_seconds:.1f} s, whole curve extrapolated to {extrapolated:.0f} s; "
          f"time ratio peer / relusv = {extrapolated / relusv_seconds:.1f}")
    print(f"[{'met' if excess <= 0.01 else 'MISSED'}] max excess of relusv over the peer = {100 * excess:+.2f} % "
          f"<= 1 %; mean ratio {np.mean(ratios):.3f}")
    verdict = "met" if extrapolated / relusv_seconds >= 10 else "MISSED"
    print(f"[{verdict}] whole-curve time ratio {extrapolated / relusv_seconds:.1f} >= 10; "
          f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--part", type=int, choices=(1, 2, 3), help="run one part only")
    parser.add_argument("--peer-block", type=int, default=16, help="part 2: the peer fits one k per block")
    args = parser.parse_args()
    if args.part in (None, 1):
        part1(args.quick)
    if args.part in (None, 3):
        part3(args.quick)
    if args.part in (None, 2):
        part2(args.quick, args.peer_block)


if __name__ == "__main__":
    main()
