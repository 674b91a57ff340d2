"""Benchmark: upper bounds of ReLU singular values, relusv against the paper's procedure.

    .venv/bin/python bench/relu_sv.py            # the full run (about 20-25 minutes on 2 busy cores)
    .venv/bin/python bench/relu_sv.py --quick    # a smoke run on small sizes (seconds)

Workloads (MATH.md sections 2-3; rows of X are points; float32 throughout):
  (a) a 10 x 10 layer on 10,000 points, k = 5;
  (b) a 50 x 50 layer on 100 points, k = 20;
  (c) the whole curve of a 100 x 100 layer on 1,000 points;
  (d) the whole curve of a 512 x 784 layer on 10,000 points, the peer sampled at
      one k drawn at random (seeded) from each block of ``--peer-stride``
      consecutive k, and its whole-curve time extrapolated (block size x time).
Layers ReLU(W x + b): W He-initialised Gaussian, N(0, 2/n) entries (for (d) its
singular values reshaped into a decaying spectrum, see ``decaying_spectrum``),
b ~ N(0, 0.1^2) fixed; data uniform in [-1, 1]^n. All seeded.

The peer (bench/paper_peer.py) fits every k independently with Adam as the
paper's reference code does. Both run in the same process, one after the
other, each with its default threads (2 cores here). Times are medians of the
repeats; ratios and the bound comparison are printed per workload, and the
curves of (c) and (d) are plotted to bench/figures/relu_sv_curves.png.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_peer import MAX_STEPS, PaperPeer, PeerFit, max_error  # noqa: E402

FIGURE = Path(__file__).resolve().parent / "figures" / "relu_sv_curves.png"
DTYPE = np.float32
BIAS_SCALE = 0.1
SEED = 2020
RELUSV_SEED = 0
# Targets of issue 3.
TIME_RATIO_TARGET = 10.0
EXCESS_TARGET = 0.01


@dataclass(frozen=True)
class Workload:
    """A layer ReLU(W x + b) of shape m x n over N points and the ranks to bound."""

    key: str
    m: int
    n: int
    points: int
    ks: Optional[Sequence[int]]        # None: the whole curve 0 .. min(m, n) - 1
    peer_stride: int = 1               # the peer runs at one k per block of peer_stride k
    decaying: bool = False
    peer_repeats: int = 1
    relusv_repeats: int = 3

    @property
    def curve(self) -> List[int]:
        return list(range(min(self.m, self.n))) if self.ks is None else list(self.ks)

    @property
    def peer_ks(self) -> List[int]:
        """Stratified sampling: one k drawn at random (seeded) from each block of
        ``peer_stride`` consecutive k, so the sample is not aligned with any
        regular grid of k the tool under test may favour."""
        if self.peer_stride == 1:
            return self.curve
        rng = np.random.default_rng([SEED, self.peer_stride])
        curve = self.curve
        return [curve[start + int(rng.integers(min(self.peer_stride, len(curve) - start)))]
                for start in range(0, len(curve), self.peer_stride)]

    @property
    def title(self) -> str:
        what = f"k = {', '.join(map(str, self.ks))}" if self.ks is not None else "whole curve"
        return f"({self.key}) {self.m} x {self.n} layer, {self.points:,} points, {what}"


def workloads(quick: bool, peer_stride: int = 64) -> List[Workload]:
    if quick:
        return [Workload("a", 10, 10, 1_000, [5], peer_repeats=3),
                Workload("b", 30, 30, 100, [10], peer_repeats=3),
                Workload("c", 16, 16, 200, None),
                Workload("d", 32, 48, 300, None, peer_stride=8, decaying=True)]
    return [Workload("a", 10, 10, 10_000, [5], peer_repeats=3),
            Workload("b", 50, 50, 100, [20], peer_repeats=3),
            Workload("c", 100, 100, 1_000, None),
            Workload("d", 512, 784, 10_000, None, peer_stride=peer_stride, decaying=True, relusv_repeats=3)]


def decaying_spectrum(G: np.ndarray) -> np.ndarray:
    """A trained-looking weight from a Gaussian one: the same singular vectors,
    singular values s_i(G) / (1 + i / 16), rescaled to the Frobenius norm of G
    (a few dominant directions and a long tail, as in trained dense layers)."""
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    shaped = s / (1.0 + np.arange(s.size) / 16.0)
    shaped *= np.linalg.norm(s) / np.linalg.norm(shaped)
    return (U * shaped) @ Vt


def make_layer(w: Workload, seed: int):
    rng = np.random.default_rng([seed, ord(w.key)])
    W = rng.normal(0.0, np.sqrt(2.0 / w.n), size=(w.m, w.n))
    if w.decaying:
        W = decaying_spectrum(W)
    b = rng.normal(0.0, BIAS_SCALE, size=w.m)
    X = rng.uniform(-1.0, 1.0, size=(w.points, w.n))
    return W.astype(DTYPE), b.astype(DTYPE), X.astype(DTYPE)


# ----------------------------------------------------------------- runners

def relusv_function():
    """relusv.relu_singular_values, or None with the reason when it is not available."""
    try:
        import relusv
        return relusv.relu_singular_values, None
    except (ImportError, AttributeError, OSError) as error:
        return None, f"{type(error).__name__}: {error}"


@dataclass
class RelusvRun:
    seconds: List[float]
    ks: np.ndarray
    sigma: np.ndarray
    truncation: np.ndarray
    bound: np.ndarray
    source: List[str]
    steps: np.ndarray
    fit_stride: int
    recomputed: Optional[Dict[int, float]] = None   # k -> max error of the returned factors


def run_relusv(fn, W, b, X, w: Workload, verify: bool) -> RelusvRun:
    ks = None if w.ks is None else list(w.ks)
    seconds, spectrum = [], None
    for _ in range(w.relusv_repeats):
        start = time.perf_counter()
        spectrum = fn(W, b, X, ks, seed=RELUSV_SEED, progress=False)
        seconds.append(time.perf_counter() - start)
        if sum(seconds) > 120:      # repeat only where cheap
            break
    run = RelusvRun(seconds, np.asarray(spectrum.ks), np.asarray(spectrum.sigma),
                    np.asarray(spectrum.truncation_bound), np.asarray(spectrum.bound),
                    [str(s) for s in spectrum.source], np.asarray(spectrum.steps),
                    int(getattr(spectrum, "fit_stride", 1)))
    if verify:
        run.recomputed = verify_factors(fn, W, b, X, w, run)
    return run


def verify_factors(fn, W, b, X, w: Workload, run: RelusvRun) -> Dict[int, float]:
    """Recompute relusv's bounds from the factors it returns, in float64 (MATH.md 3 step 2).

    Uses a second call with ``return_factors=True`` on the peer's ks (for the
    whole 512-wide curve the factors of every k would not fit in memory)."""
    ks = w.peer_ks
    spectrum = fn(W, b, X, ks, seed=RELUSV_SEED, progress=False, return_factors=True)
    out = {}
    for i, k in enumerate(ks):
        U, V = spectrum.factors[i]
        L = np.zeros(W.shape) if U is None or np.size(U) == 0 else np.asarray(U, float) @ np.asarray(V, float)
        out[k] = (float(spectrum.bound[i]), max_error(W, b, X, L))
    return out


@dataclass
class PeerRun:
    seconds: List[float]            # per repeat: time of the sampled ks
    fits: List[PeerFit]
    curve_seconds: float            # median, extrapolated to the whole curve when sampled


def choose_peer_threads(W, b, X, k: int) -> Dict[int, float]:
    """Seconds per Adam step of the peer with 1 thread and with torch's default.

    On 2 shared cores torch's OpenMP threads can slow a busy machine down by
    an order of magnitude (spinning barriers); the peer gets the faster one."""
    default = torch.get_num_threads()
    per_step = {}
    for threads in sorted({1, default}):
        torch.set_num_threads(threads)
        fit = PaperPeer(W, b, X, max_steps=15).fit(k)
        per_step[threads] = fit.seconds / max(fit.steps, 1)
    torch.set_num_threads(default)
    return per_step


def run_peer(W, b, X, w: Workload, log, threads: int) -> PeerRun:
    peer = PaperPeer(W, b, X, threads=threads)
    seconds, fits = [], []
    for repeat in range(w.peer_repeats):
        start = time.perf_counter()
        fits = peer.curve(w.peer_ks, progress=log if repeat == 0 and len(w.peer_ks) > 1 else None)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return PeerRun(seconds, fits, median * w.peer_stride)


def peer_cache_file(directory: Path, W, b, X, w: Workload) -> Path:
    """Where the peer's results for exactly these inputs and this peer code are kept."""
    digest = hashlib.sha256()
    digest.update((Path(__file__).resolve().parent / "paper_peer.py").read_bytes())
    for a in (W, b, X):
        digest.update(np.ascontiguousarray(a).tobytes())
    digest.update(json.dumps([w.peer_ks, w.peer_stride, w.peer_repeats]).encode())
    return directory / f"peer-{w.key}-{digest.hexdigest()[:16]}.json"


def save_peer(path: Path, run: PeerRun, threads: int, load: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seconds": run.seconds, "curve_seconds": run.curve_seconds, "threads": threads,
                                "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                "load_average": load, "fits": [asdict(f) for f in run.fits]}, indent=1))


def load_peer(path: Path):
    data = json.loads(path.read_text())
    run = PeerRun(data["seconds"], [PeerFit(**f) for f in data["fits"]], data["curve_seconds"])
    return run, data


def warm_up(fn):
    """Load the libraries and start their thread pools outside the timings."""
    rng = np.random.default_rng(0)
    W, X = rng.normal(size=(8, 8)).astype(DTYPE), rng.uniform(-1, 1, (64, 8)).astype(DTYPE)
    b = np.zeros(8, DTYPE)
    PaperPeer(W, b, X).fit(3)
    if fn is not None:
        fn(W, b, X, [3], seed=0, progress=False)


# ----------------------------------------------------------------- reporting

@dataclass
class Comparison:
    ks: List[int]
    sigma: List[float]
    truncation: List[float]
    peer: List[float]
    relusv: List[Optional[float]]
    source: List[Optional[str]]
    peer_steps: List[int]
    max_excess: Optional[float] = None
    max_excess_k: Optional[int] = None
    mean_ratio: Optional[float] = None
    time_ratio: Optional[float] = None
    peer_seconds: float = 0.0
    relusv_seconds: Optional[float] = None
    capped: int = 0
    extras: Dict = field(default_factory=dict)


def truncation_bounds(W, b, X, ks) -> List[float]:
    """t_k = max_x ||ReLU(Wx+b) - ReLU(W_k x+b)|| (MATH.md 2) by NumPy in float64, independent of relusv."""
    U, s, Vt = np.linalg.svd(W.astype(np.float64), full_matrices=False)
    return [max_error(W, b, X, (U[:, :k] * s[:k]) @ Vt[:k]) for k in ks]


def compare(w: Workload, W, b, X, peer: PeerRun, rel: Optional[RelusvRun]) -> Comparison:
    sigma = np.linalg.svd(W.astype(np.float64), compute_uv=False)
    truncation = truncation_bounds(W, b, X, [f.k for f in peer.fits])
    position = {} if rel is None else {int(k): i for i, k in enumerate(rel.ks)}
    c = Comparison([], [], [], [], [], [], [])
    for fit in peer.fits:
        i = position.get(fit.k)
        c.ks.append(fit.k)
        c.sigma.append(float(sigma[fit.k]))
        c.truncation.append(truncation[len(c.truncation)])
        c.peer.append(fit.bound)
        c.relusv.append(float(rel.bound[i]) if i is not None else None)
        c.source.append(rel.source[i] if i is not None else None)
        c.peer_steps.append(fit.steps)
    c.capped = sum(f.hit_cap for f in peer.fits)
    c.peer_seconds = peer.curve_seconds
    if rel is not None:
        theirs = np.array([rel.truncation[position[k]] for k in c.ks])
        c.extras["t_k_difference"] = float(np.max(np.abs(theirs - c.truncation) / np.maximum(c.truncation, 1e-30)))
        c.relusv_seconds = statistics.median(rel.seconds)
        c.time_ratio = c.peer_seconds / c.relusv_seconds
        # relative excess of relusv over the peer; where the peer's bound is
        # zero (k >= rank) relusv must be zero too, compared absolutely
        scale = max(c.peer[0], 1e-30)
        excess = [(r - p) / p if p > 1e-9 * scale else (r - p) / scale for p, r in zip(c.peer, c.relusv)]
        worst = int(np.argmax(excess))
        c.max_excess, c.max_excess_k = float(excess[worst]), c.ks[worst]
        ratios = [r / p for p, r in zip(c.peer, c.relusv) if p > 1e-9 * scale]
        c.mean_ratio = float(np.mean(ratios)) if ratios else None
    return c


def print_table(w: Workload, c: Comparison, out) -> None:
    out(f"{'k':>5} {'sigma_k':>10} {'t_k':>10} {'peer':>10} {'relusv':>10} {'rel/peer':>9} "
        f"{'peer steps':>10}  relusv source")
    for i, k in enumerate(c.ks):
        r = c.relusv[i]
        ratio = f"{r / c.peer[i]:9.4f}" if r is not None and c.peer[i] > 0 else f"{'-':>9}"
        rs = f"{r:10.5g}" if r is not None else f"{'-':>10}"
        out(f"{k:5d} {c.sigma[i]:10.5g} {c.truncation[i]:10.5g} {c.peer[i]:10.5g} {rs} {ratio} "
            f"{c.peer_steps[i]:10d}  {c.source[i] or '-'}")


def print_summary(w: Workload, c: Comparison, peer: PeerRun, rel: Optional[RelusvRun], out) -> None:
    sampled = w.peer_stride > 1
    peer_line = (f"peer  {c.peer_seconds:9.2f} s" +
                 (f"  (extrapolated: {len(w.peer_ks)} sampled k = {w.peer_ks[0]}, {w.peer_ks[1]}, ... "
                  f"{w.peer_ks[-1]} took {statistics.median(peer.seconds):.1f} s; x {w.peer_stride}, "
                  f"one k per block of {w.peer_stride})"
                  if sampled else f"  (median of {len(peer.seconds)}: "
                  f"{', '.join(f'{s:.2f}' for s in peer.seconds)})"))
    out(peer_line)
    if c.capped:
        out(f"peer  WARNING: {c.capped} fit(s) hit the cap of {MAX_STEPS} steps")
    if rel is None:
        out("relusv  not available: peer only")
        return
    out(f"relusv {c.relusv_seconds:8.3f} s  (median of {len(rel.seconds)}: "
        f"{', '.join(f'{s:.3f}' for s in rel.seconds)}; fit stride {rel.fit_stride}, "
        f"{int(rel.steps.sum())} Adam steps in all; best candidates: "
        f"{', '.join(f'{n} {rel.source.count(n)}' for n in sorted(set(rel.source)))})")
    whole = w.ks is None
    out(f"time ratio peer / relusv: {c.time_ratio:8.1f} x" +
        (f"   target >= {TIME_RATIO_TARGET:g} x: {'met' if c.time_ratio >= TIME_RATIO_TARGET else 'MISSED'}"
         if whole else "   (single k; the time target is for whole curves)"))
    out(f"max relative excess of relusv over the peer: {100 * c.max_excess:+.3f} % at k = {c.max_excess_k}"
        f"   target <= {100 * EXCESS_TARGET:g} %: {'met' if c.max_excess <= EXCESS_TARGET else 'MISSED'}")
    if c.mean_ratio is not None:
        out(f"mean bound ratio relusv / peer over {len(c.ks)} k: {c.mean_ratio:.4f}"
            f"   target < 1: {'met' if c.mean_ratio < 1 else 'MISSED'}")
    out(f"relusv's t_k against NumPy's (float64): max relative difference {c.extras['t_k_difference']:.1e}")
    if rel.recomputed:
        worst = max((rep - exact) / max(exact, 1e-30) for rep, exact in rel.recomputed.values())
        low = min((rep - exact) / max(exact, 1e-30) for rep, exact in rel.recomputed.values())
        out(f"relusv certificate: bounds recomputed in float64 from the returned factors at "
            f"{len(rel.recomputed)} k: reported/exact - 1 in [{low:+.2e}, {worst:+.2e}]"
            f" ({'valid' if low >= -1e-5 else 'NOT an upper bound'})")
        c.extras["certificate_relative_error"] = [low, worst]


def plot(results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [(w, c, rel, R) for (w, c, rel, R) in results if w.ks is None]
    if not shown:
        return
    fig, axes = plt.subplots(2, len(shown), figsize=(6.4 * len(shown), 7.6),
                             gridspec_kw={"height_ratios": [3, 1.3]}, squeeze=False)
    for col, (w, c, rel, R) in enumerate(shown):
        top, bottom = axes[0, col], axes[1, col]
        ks = np.arange(min(w.m, w.n))
        sigma = np.linalg.svd(R["W"].astype(np.float64), compute_uv=False)
        top.plot(ks, sigma * R["radius"], color="0.55", lw=1.4, label=r"linear: $\sigma_k(W)\,\max_x\|x\|$")
        if rel is not None:
            top.plot(rel.ks, rel.truncation, color="tab:orange", lw=1.4, ls="--", label=r"$t_k$ (truncated SVD)")
        else:
            top.plot(c.ks, c.truncation, color="tab:orange", lw=1.4, ls="--", label=r"$t_k$ (truncated SVD)")
        top.plot(c.ks, c.peer, color="tab:blue", marker="o" if w.peer_stride > 1 else None, ms=5,
                 lw=1.0 if w.peer_stride > 1 else 1.4, ls=":" if w.peer_stride > 1 else "-",
                 label="paper's procedure (peer)" + (f", one k per {w.peer_stride}" if w.peer_stride > 1 else ""))
        if rel is not None:
            top.plot(rel.ks, rel.bound, color="tab:red", lw=1.6, label="relusv (certified)")
        top.set_yscale("log")
        top.set_title(w.title, fontsize=11)
        top.set_ylabel(r"upper bound of $s_k(\phi; X)$")
        top.grid(True, which="both", alpha=0.25)
        top.legend(fontsize=9, loc="lower left")
        if rel is not None:
            mask = [r is not None and p > 0 for p, r in zip(c.peer, c.relusv)]
            kk = np.array(c.ks)[mask]
            bottom.plot(kk, np.array(c.relusv, dtype=float)[mask] / np.array(c.peer)[mask], color="tab:red",
                        marker="o" if w.peer_stride > 1 else None, ms=4, lw=1.4, label="relusv / peer")
            tt = np.array(c.truncation)[mask] / np.array(c.peer)[mask]
            bottom.plot(kk, tt, color="tab:orange", ls="--", lw=1.2, label=r"$t_k$ / peer")
            bottom.axhline(1.0, color="0.3", lw=0.8)
            bottom.legend(fontsize=9)
        bottom.set_xlabel("k (rank of the approximant)")
        bottom.set_ylabel("ratio to the peer")
        bottom.grid(True, alpha=0.25)
        for ax in (top, bottom):
            ax.set_xlim(0, len(ks) - 1)
    fig.suptitle("ReLU singular values: upper bounds over the data (float32, uniform data, bias fixed)", fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run of seconds")
    parser.add_argument("--only", default="abcd", help="workloads to run, e.g. 'cd' (default: abcd)")
    parser.add_argument("--peer-stride", type=int, default=64,
                        help="(d): the peer runs at one k per block of N consecutive k, "
                             "its time extrapolated (default 64)")
    parser.add_argument("--peer-cache", type=Path, metavar="DIR",
                        help="reuse the peer's results for identical inputs and peer code "
                             "from DIR (and save them there)")
    parser.add_argument("--peer-only", action="store_true", help="do not run relusv")
    parser.add_argument("--no-verify", action="store_true", help="skip recomputing relusv's bounds from its factors")
    parser.add_argument("--figure", type=Path,
                        help=f"figure path (default {FIGURE}; with --quick, a _quick suffix)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.figure is None:     # a smoke run never overwrites the full run's figure
        args.figure = FIGURE.with_name(FIGURE.stem + "_quick.png") if args.quick else FIGURE

    def out(line=""):
        print(line, flush=True)

    fn, why = (None, "--peer-only") if args.peer_only else relusv_function()
    try:
        import relusv
        version = relusv.__version__
    except ImportError:
        version = "?"
    out(f"relusv {version} vs the paper's procedure (PyTorch {torch.__version__}, "
        f"{torch.get_num_threads()} threads); float32 inputs; seed {SEED}")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        commit = "?"
    out(f"repository at {commit or '?'}; library {os.environ.get('RELUSV_LIBRARY', 'python/relusv/libReluSVKit.so')}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if fn is None:
        out(f"relusv.relu_singular_values unavailable ({why}): running the peer alone")
    warm_up(fn)
    default_threads = torch.get_num_threads()
    results, summary = [], []
    for w in workloads(args.quick, args.peer_stride):
        if w.key not in args.only:
            continue
        W, b, X = make_layer(w, SEED)
        radius = float(np.sqrt((X.astype(np.float64) ** 2).sum(axis=1)).max())
        out()
        out(f"== {w.title}" + (f"; the peer at one k per block of {w.peer_stride}" if w.peer_stride > 1 else ""))
        out(f"   load average before: {os.getloadavg()[0]:.2f} (2 cores)")
        if w.decaying:
            out("   W: He Gaussian with singular values reshaped to s_i / (1 + i/16), same Frobenius norm")
        rel = None
        if fn is not None:
            rel = run_relusv(fn, W, b, X, w, verify=not args.no_verify)
        started = time.perf_counter()

        def log(fit: PeerFit):
            if len(w.peer_ks) > 8 or w.m * w.n * w.points > 10**8:
                print(f"   peer k = {fit.k}: bound {fit.bound:.5g}, {fit.steps} steps, {fit.seconds:.1f} s "
                      f"(elapsed {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

        cache = peer_cache_file(args.peer_cache, W, b, X, w) if args.peer_cache else None
        if cache is not None and cache.exists():
            peer, data = load_peer(cache)
            out(f"   PEER RESULTS REUSED from {cache} (same inputs and peer code; measured {data['measured']} "
                f"with {data['threads']} thread(s), load average {data['load_average']:.2f})")
        else:
            trial = choose_peer_threads(W, b, X, w.peer_ks[len(w.peer_ks) // 2])
            threads = min(trial, key=trial.get)
            out(f"   peer threads: {threads} (seconds per step on a short trial: "
                f"{', '.join(f'{t} thread(s) {v * 1e3:.2f} ms' for t, v in trial.items())})")
            peer = run_peer(W, b, X, w, log, threads)
            torch.set_num_threads(default_threads)
            if cache is not None:
                save_peer(cache, peer, threads, os.getloadavg()[0])
        out(f"   load average after the workload: {os.getloadavg()[0]:.2f} (2 cores)")
        c = compare(w, W, b, X, peer, rel)
        print_table(w, c, out)
        print_summary(w, c, peer, rel, out)
        results.append((w, c, rel, {"W": W, "radius": radius}))
        summary.append((w, c))
    out()
    out("== summary")
    out(f"{'workload':<44} {'peer s':>9} {'relusv s':>9} {'ratio':>8} {'max excess':>11} {'mean ratio':>10}")
    for w, c in summary:
        extrap = "*" if w.peer_stride > 1 else " "
        if c.relusv_seconds is None:
            out(f"{w.title:<44} {c.peer_seconds:8.2f}{extrap} {'-':>9}")
            continue
        out(f"{w.title:<44} {c.peer_seconds:8.2f}{extrap} {c.relusv_seconds:9.3f} {c.time_ratio:7.1f}x "
            f"{100 * c.max_excess:+10.3f}% {c.mean_ratio:10.4f}")
    if any(w.peer_stride > 1 for w, _ in summary):
        out("* extrapolated: one k drawn from each block of consecutive k, time x block size; "
            "bounds compared at the sampled k only")
    plot(results, args.figure)
    out(f"figure: {args.figure}")
    if args.json:
        args.json.write_text(json.dumps([{"workload": w.title, "ks": c.ks, "sigma": c.sigma,
                                          "truncation_bound": c.truncation, "peer": c.peer, "relusv": c.relusv,
                                          "source": c.source, "peer_steps": c.peer_steps,
                                          "peer_seconds": c.peer_seconds, "relusv_seconds": c.relusv_seconds,
                                          "time_ratio": c.time_ratio, "max_excess": c.max_excess,
                                          "mean_ratio": c.mean_ratio} for w, c in summary], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
