"""Benchmark: upper bounds of ReLU singular values, relusv against the paper's procedure.

    .venv/bin/python bench/relu_sv.py --peer-cache bench/.peer-cache   # the full run (the peer: tens of minutes)
    .venv/bin/python bench/relu_sv.py --quick                          # a smoke run on small sizes

The suite (MATH.md sections 2-3; rows of X are points; float32 throughout;
b ~ N(0, 0.1^2) unless the layer brings its own), every curve whole:
  he-uniform      100 x 100, W He Gaussian N(0, 2/n), X uniform in [-1, 1]^n, N = 500;
  sparse-nonneg   100 x 100, W He, X = ReLU(G - 1) for Gaussian G (nonnegative, about
                  16 % non-zero, like post-ReLU activations), N = 500;
  digits-0/1/2    each hidden layer of the built-in digits MLP 64-100-100-100-10
                  (relusv/data/digits_mlp.npz, its own biases) on the activations of
                  600 of its held-out digits (every second held-out image);
  decaying        100 x 100, W's singular values reshaped to s_i / (1 + i/16), X uniform, N = 500;
  rank-deficient  100 x 100, W of rank 40 (product of He factors), X uniform, N = 500;
  few-points      100 x 100, W He, X uniform, N = 50 < n (s_k = 0 for k >= 50);
  gaussian        100 x 100, W He, X standard Gaussian, N = 1,000;
  subspace        as gaussian, X in a random 92-dimensional subspace (s_k = 0 for k >= 92);
  heldout-1/2     hidden layers 1 and 2 of the digits MLP on all 1,258 held-out images
                  (these three fit every 4th k by default: the k between get bridge fits);
  large           1,024 x 1,024, W He, X sparse nonnegative as above, N = 10,000.
The peer (bench/paper_peer.py) runs at every k of the suite's layers; for the
large layer at one k drawn at random (seeded) from each block of
``--peer-stride`` consecutive k, its whole-curve time extrapolated (block size x time).

Targets: on every suite layer no k above the peer by more than 1 %,
mean bound / peer at most 0.85, whole-curve time at least 10x below the peer's;
large: the whole curve in at most 60 s with mean bound / t_k at most 0.80.
Both tools run in the same process, one after the other (or the peer's fits
are reused, k by k, from ``--peer-cache`` for identical inputs and peer code).
Times are processor times: the peer's single thread, relusv's threads summed
(it runs with its defaults, one thread per core), so that the time ratio neither
credits relusv for using both cores nor moves with other jobs on a shared
machine; relusv's wall time is printed beside it. Times are medians of the
repeats; ratios are printed per layer, and the curves are plotted to
bench/figures/relu_sv_curves.png.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paper_peer import MAX_STEPS, PaperPeer, PeerFit, max_error  # noqa: E402

FIGURE = Path(__file__).resolve().parent / "figures" / "relu_sv_curves.png"
DIGITS = Path(__file__).resolve().parent.parent / "python" / "relusv" / "data" / "digits_mlp.npz"
DTYPE = np.float32
BIAS_SCALE = 0.1
SEED = 2020
RELUSV_SEED = 0
# The targets the suite is held to.
TIME_RATIO_TARGET = 10.0
EXCESS_TARGET = 0.01
MEAN_RATIO_TARGET = 0.85
LARGE_SECONDS_TARGET = 60.0
LARGE_TRUNCATION_TARGET = 0.80
# Below this fraction of s_0 a bound is at the rounding level of float32: such
# k are compared absolutely (relative to s_0) and left out of the mean ratio.
ROUNDING_LEVEL = 1e-5


@dataclass(frozen=True)
class Workload:
    """A layer ReLU(W x + b) of shape m x n over N points, its whole curve bounded."""

    key: str
    m: int
    n: int
    points: int
    description: str
    peer_stride: int = 1               # the peer runs at one k per block of peer_stride k
    relusv_repeats: int = 3
    large: bool = False

    @property
    def curve(self) -> List[int]:
        return list(range(min(self.m, self.n)))

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
        return f"{self.key}: {self.m} x {self.n}, {self.points:,} points"


def workloads(quick: bool, peer_stride: int = 256, suite_stride: int = 1) -> List[Workload]:
    if quick:
        return [Workload("he-uniform", 16, 16, 200, "He W, uniform X"),
                Workload("sparse-nonneg", 16, 16, 200, "He W, sparse nonnegative X"),
                Workload("digits-1", 100, 100, 100, "digits MLP hidden layer 1", relusv_repeats=1, peer_stride=suite_stride),
                Workload("decaying", 16, 16, 200, "decaying spectrum"),
                Workload("rank-deficient", 16, 16, 200, "W of rank 6"),
                Workload("few-points", 16, 16, 10, "N < n"),
                Workload("large", 128, 128, 1000, "He W, sparse nonnegative X", peer_stride=32,
                         relusv_repeats=1, large=True)]
    return [Workload("he-uniform", 100, 100, 500, "He W, uniform X", peer_stride=suite_stride),
            Workload("sparse-nonneg", 100, 100, 500, "He W, sparse nonnegative X with bias", peer_stride=suite_stride),
            Workload("digits-0", 100, 64, 600, "digits MLP hidden layer 0 on held-out images", peer_stride=suite_stride),
            Workload("digits-1", 100, 100, 600, "digits MLP hidden layer 1 on held-out activations",
                     peer_stride=suite_stride),
            Workload("digits-2", 100, 100, 600, "digits MLP hidden layer 2 on held-out activations", peer_stride=suite_stride),
            Workload("decaying", 100, 100, 500, "decaying spectrum s_i / (1 + i/16)", peer_stride=suite_stride),
            Workload("rank-deficient", 100, 100, 500, "W of rank 40", peer_stride=suite_stride),
            Workload("few-points", 100, 100, 50, "N = 50 < n = 100", peer_stride=suite_stride),
            Workload("gaussian", 100, 100, 1000, "He W, Gaussian X with bias (fits at every 4th k)",
                     peer_stride=suite_stride),
            Workload("subspace", 100, 100, 1000, "He W, Gaussian X in a 92-dimensional subspace (s_k = 0 for k >= 92)",
                     peer_stride=suite_stride),
            Workload("heldout-1", 100, 100, 1258, "digits MLP hidden layer 1 on all held-out activations "
                     "(fits at every 4th k)", peer_stride=suite_stride),
            Workload("heldout-2", 100, 100, 1258, "digits MLP hidden layer 2 on all held-out activations "
                     "(fits at every 4th k)", peer_stride=suite_stride),
            Workload("large", 1024, 1024, 10_000, "He W, sparse nonnegative X", peer_stride=peer_stride,
                     relusv_repeats=1, large=True)]


def decaying_spectrum(G: np.ndarray) -> np.ndarray:
    """A trained-looking weight from a Gaussian one: the same singular vectors,
    singular values s_i(G) / (1 + i / 16), rescaled to the Frobenius norm of G
    (a few dominant directions and a long tail, as in trained dense layers)."""
    U, s, Vt = np.linalg.svd(G, full_matrices=False)
    shaped = s / (1.0 + np.arange(s.size) / 16.0)
    shaped *= np.linalg.norm(s) / np.linalg.norm(shaped)
    return (U * shaped) @ Vt


def digits_layer(index: int, points: int, every: int = 2):
    """Hidden layer ``index`` of the built-in digits MLP and its inputs on held-out images
    (every ``every``-th held-out image, at most ``points``)."""
    from sklearn.datasets import load_digits
    with np.load(DIGITS, allow_pickle=False) as archive:
        weights = [archive[f"W{i}"] for i in range(index + 1)]
        biases = [archive[f"b{i}"] for i in range(index + 1)]
        test_index = archive["test_index"]
    h = load_digits().data[test_index[::every][:points]] / 16.0
    for W, b in zip(weights[:-1], biases[:-1]):
        h = np.maximum(h @ W.T + b, 0.0)
    return weights[-1], biases[-1], h


def make_layer(w: Workload, seed: int):
    rng = np.random.default_rng([seed, sum(map(ord, w.key))])
    if w.key.startswith(("digits", "heldout")):
        every = 1 if w.key.startswith("heldout") else 2
        W, b, X = digits_layer(int(w.key.split("-")[1]), w.points, every)
        return W.astype(DTYPE), b.astype(DTYPE), X.astype(DTYPE)
    W = rng.normal(0.0, np.sqrt(2.0 / w.n), size=(w.m, w.n))
    if w.key == "decaying":
        W = decaying_spectrum(W)
    if w.key == "rank-deficient":
        r = 40 if w.m >= 100 else 6
        W = rng.normal(0.0, np.sqrt(2.0 / w.n), size=(w.m, r)) @ rng.normal(0.0, np.sqrt(1.0 / r), size=(r, w.n))
    b = rng.normal(0.0, BIAS_SCALE, size=w.m)
    if w.key in ("sparse-nonneg", "large"):
        X = np.maximum(rng.normal(size=(w.points, w.n)) - 1.0, 0.0)
    elif w.key == "gaussian":
        X = rng.normal(size=(w.points, w.n))
    elif w.key == "subspace":
        basis = np.linalg.qr(rng.normal(size=(w.n, 92)))[0]
        X = rng.normal(size=(w.points, 92)) @ basis.T
    else:
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
    seconds: List[float]            # wall time per repeat (default threads: one per core)
    cpu_seconds: List[float]        # processor time per repeat, all threads together
    ks: np.ndarray
    sigma: np.ndarray
    truncation: np.ndarray
    bound: np.ndarray
    source: List[str]
    steps: np.ndarray
    fit_stride: int
    recomputed: Optional[Dict[int, float]] = None   # k -> max error of the returned factors


def run_relusv(fn, W, b, X, w: Workload, verify: bool, repeats: Optional[int] = None) -> RelusvRun:
    ks = None   # the whole curve (float32 like the rest of the suite: relusv evaluates
    # its candidate families in float64 on exact copies, about as fast as float64 inputs)
    seconds, cpu_seconds, spectrum = [], [], None
    for _ in range(repeats or w.relusv_repeats):
        start, cpu = time.perf_counter(), time.process_time()
        spectrum = fn(W, b, X, ks, seed=RELUSV_SEED, progress=False)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)
        if sum(seconds) > 120:      # repeat only where cheap
            break
    run = RelusvRun(seconds, cpu_seconds, np.asarray(spectrum.ks), np.asarray(spectrum.sigma),
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
    fits: List[PeerFit]             # in the order of the workload's peer_ks
    stride: int                     # one k per block of ``stride`` k (1: every k)

    @property
    def wall_seconds(self) -> float:
        return float(sum(f.seconds for f in self.fits))

    @property
    def curve_seconds(self) -> float:
        """The peer's whole-curve time: the processor time of its fits (one thread,
        so the wall time on a free core, and not inflated by other jobs on a shared
        machine), extrapolated x stride when sampled. Wall time where a cached fit
        has no processor time."""
        per_fit = [f.seconds if math.isnan(f.cpu_seconds) else f.cpu_seconds for f in self.fits]
        return float(sum(per_fit)) * self.stride


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


def peer_cache_file(directory: Path, W, b, X, w: Workload) -> Path:
    """Where the peer's fits for exactly these inputs and this peer code are kept, one entry per k."""
    digest = hashlib.sha256()
    digest.update((Path(__file__).resolve().parent / "paper_peer.py").read_bytes())
    for a in (W, b, X):
        digest.update(np.ascontiguousarray(a).tobytes())
    return directory / f"peer-{w.key}-{digest.hexdigest()[:16]}.json"


def load_peer_fits(path: Optional[Path]) -> Dict[int, dict]:
    """The cached fits by k (each a PeerFit's fields plus when, with how many threads, at what load)."""
    if path is None or not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {int(k): entry for k, entry in data.get("fits", {}).items()}


def save_peer_fit(path: Path, fit: PeerFit, threads: int) -> None:
    """Adds one fit to the cache file (written whole to a temporary file, then renamed)."""
    fits = load_peer_fits(path)
    fits[fit.k] = dict(asdict(fit), threads=threads, load_average=os.getloadavg()[0],
                       measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"format": 2, "fits": {str(k): fits[k] for k in sorted(fits)}}, indent=1))
    staging.replace(path)


def as_peer_fit(entry: dict) -> PeerFit:
    return PeerFit(**{name: entry[name] for name in PeerFit.__dataclass_fields__ if name in entry})


def run_peer(W, b, X, w: Workload, log, threads: int, cache: Optional[Path]) -> PeerRun:
    """The peer at every k of ``w.peer_ks``; fits already in ``cache`` are reused, new ones saved there one by one."""
    cached = load_peer_fits(cache)
    missing = [k for k in w.peer_ks if k not in cached]
    if missing:
        previous = torch.get_num_threads()
        peer = PaperPeer(W, b, X, threads=threads)
        for k in missing:
            fit = peer.fit(k)
            cached[k] = asdict(fit)
            if cache is not None:
                save_peer_fit(cache, fit, threads)
            log(fit)
        torch.set_num_threads(previous)
    return PeerRun([as_peer_fit(cached[k]) for k in w.peer_ks], w.peer_stride)


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
    relusv_seconds: Optional[float] = None      # processor time (median over repeats)
    relusv_wall_seconds: Optional[float] = None
    wall_ratio: Optional[float] = None
    capped: int = 0
    over: int = 0
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
        # Both in processor time: the peer runs one thread, relusv's threads are
        # summed, so the ratio does not credit relusv for using both cores and
        # is not moved by other jobs on a shared machine.
        c.relusv_seconds = statistics.median(rel.cpu_seconds)
        c.relusv_wall_seconds = statistics.median(rel.seconds)
        c.time_ratio = c.peer_seconds / c.relusv_seconds
        c.wall_ratio = c.peer_seconds / c.relusv_wall_seconds
        # relative excess of relusv over the peer; where the peer's bound is at
        # the rounding level (k >= rank), compared absolutely, relative to s_0
        level = ROUNDING_LEVEL * max(c.peer[0], 1e-30)
        excess = [(r - p) / p if p > level else (r - p) / c.peer[0] for p, r in zip(c.peer, c.relusv)]
        worst = int(np.argmax(excess))
        c.max_excess, c.max_excess_k = float(excess[worst]), c.ks[worst]
        c.over = sum(e > EXCESS_TARGET for e in excess)
        ratios = [r / p for p, r in zip(c.peer, c.relusv) if p > level]
        c.mean_ratio = float(np.mean(ratios)) if ratios else None
        # mean bound / t_k over the whole curve (k with t_k above the rounding level)
        t0 = max(float(rel.truncation[0]), 1e-30)
        keep = rel.truncation > ROUNDING_LEVEL * t0
        c.extras["mean_over_truncation"] = float(np.mean(rel.bound[keep] / rel.truncation[keep]))
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
    out(f"peer  {c.peer_seconds:9.2f} s processor time of {len(peer.fits)} independent fits"
        + (f" at sampled k = {w.peer_ks[0]}, {w.peer_ks[1]}, ... {w.peer_ks[-1]}, x {w.peer_stride} "
           f"(one k per block of {w.peer_stride})" if sampled else "")
        + f"; wall time {peer.wall_seconds:.1f} s")
    if c.capped:
        out(f"peer  WARNING: {c.capped} fit(s) hit the cap of {MAX_STEPS} steps")
    if rel is None:
        out("relusv  not available: peer only")
        return
    out(f"relusv {c.relusv_seconds:8.3f} s processor time, {c.relusv_wall_seconds:.3f} s wall (medians of "
        f"{len(rel.seconds)}: {', '.join(f'{s:.3f}' for s in rel.cpu_seconds)} / "
        f"{', '.join(f'{s:.3f}' for s in rel.seconds)}; fit stride {rel.fit_stride}, "
        f"{int(rel.steps.sum())} Adam steps in all; best candidates: "
        f"{', '.join(f'{n} {rel.source.count(n)}' for n in sorted(set(rel.source)))})")
    out(f"time ratio peer / relusv: {c.time_ratio:8.1f} x in processor time ({c.wall_ratio:.1f} x against relusv's "
        f"wall time)" +
        ("   (large layer: the peer extrapolated)" if w.large else
         f"   target >= {TIME_RATIO_TARGET:g} x: {'met' if c.time_ratio >= TIME_RATIO_TARGET else 'MISSED'}"))
    out(f"max relative excess of relusv over the peer: {100 * c.max_excess:+.3f} % at k = {c.max_excess_k}; "
        f"{c.over} k above +{100 * EXCESS_TARGET:g} %" +
        ("   (large layer: at its sampled k; the target of none is the suite's)" if w.large else
         f"   target none: {'met' if c.over == 0 else 'MISSED'}"))
    if c.mean_ratio is not None:
        out(f"mean bound ratio relusv / peer over {len(c.ks)} k: {c.mean_ratio:.4f}"
            + ("" if w.large else f"   target <= {MEAN_RATIO_TARGET}: "
               f"{'met' if c.mean_ratio <= MEAN_RATIO_TARGET else 'MISSED'}"))
    mt = c.extras["mean_over_truncation"]
    out(f"mean bound / t_k over the whole curve: {mt:.4f}" +
        (f"   target <= {LARGE_TRUNCATION_TARGET}: {'met' if mt <= LARGE_TRUNCATION_TARGET else 'MISSED'}; "
         f"wall time {c.relusv_wall_seconds:.1f} s, target <= {LARGE_SECONDS_TARGET:g} s: "
         f"{'met' if c.relusv_wall_seconds <= LARGE_SECONDS_TARGET else 'MISSED'}" if w.large else ""))
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

    cols = 3
    rows = (len(results) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat[len(results):]:
        ax.axis("off")
    for ax, (w, c, rel, R) in zip(axes.flat, results):
        ks = np.arange(min(w.m, w.n))
        sigma = np.linalg.svd(R["W"].astype(np.float64), compute_uv=False)
        ax.plot(ks, sigma * R["radius"], color="0.55", lw=1.2, label=r"$\sigma_k(W)\,\max_x\|x\|$")
        if rel is not None:
            ax.plot(rel.ks, rel.truncation, color="tab:orange", lw=1.2, ls="--", label=r"$t_k$ (truncated SVD)")
        sampled = w.peer_stride > 1
        ax.plot(c.ks, c.peer, color="tab:blue", marker="o" if sampled else None, ms=4, lw=1.0 if sampled else 1.3,
                ls=":" if sampled else "-", label="paper's procedure" + (f" (one k per {w.peer_stride})" if sampled else ""))
        if rel is not None:
            ax.plot(rel.ks, rel.bound, color="tab:red", lw=1.5, label="relusv (certified)")
        ax.set_yscale("log")
        ratio = f"; relusv/peer {c.mean_ratio:.2f}" if c.mean_ratio is not None else ""
        ax.set_title(f"{w.title}{ratio}", fontsize=9.5)
        ax.set_xlabel("k", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.set_xlim(0, len(ks) - 1)
        floor = max(c.peer[0], 1e-30) * 1e-7
        ax.set_ylim(bottom=floor)
    axes.flat[0].legend(fontsize=8, loc="lower left")
    fig.suptitle("ReLU singular values: certified upper bounds over the data (float32), relusv vs the paper's procedure",
                 fontsize=12)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--only", default="", help="comma-separated layer keys to run (default: all)")
    parser.add_argument("--peer-stride", type=int, default=256,
                        help="large layer: the peer runs at one k per block of N consecutive k, "
                             "its time extrapolated (default 256)")
    parser.add_argument("--suite-peer-stride", type=int, default=1,
                        help="suite layers: the peer at one k per block of N consecutive k (default 1: every k)")
    parser.add_argument("--peer-cache", type=Path, metavar="DIR",
                        help="reuse the peer's results for identical inputs and peer code "
                             "from DIR (and save them there)")
    parser.add_argument("--peer-only", action="store_true", help="do not run relusv")
    parser.add_argument("--peer-threads", type=int, help="torch threads of the peer (default: the faster "
                        "of 1 and torch's default on a short trial)")
    parser.add_argument("--repeats", type=int, help="relusv repeats per layer (default 3 where cheap)")
    parser.add_argument("--large-without-peer", action="store_true",
                        help="large layer: relusv alone (time and mean bound / t_k; no peer comparison)")
    parser.add_argument("--no-verify", action="store_true", help="skip recomputing relusv's bounds from its factors")
    parser.add_argument("--figure", type=Path,
                        help=f"figure path (default {FIGURE}; with --quick, a _quick suffix)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.figure is None:     # a smoke run never overwrites the full run's figure
        args.figure = FIGURE.with_name(FIGURE.stem + "_quick.png") if args.quick else FIGURE
    only = {key for key in args.only.split(",") if key}

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
    out(f"repository at {commit or '?'}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    if fn is None:
        out(f"relusv.relu_singular_values unavailable ({why}): running the peer alone")
    warm_up(fn)
    results, summary = [], []
    for w in workloads(args.quick, args.peer_stride, args.suite_peer_stride):
        if only and w.key not in only:
            continue
        W, b, X = make_layer(w, SEED)
        radius = float(np.sqrt((X.astype(np.float64) ** 2).sum(axis=1)).max())
        out()
        out(f"== {w.title} ({w.description})" +
            (f"; the peer at one k per block of {w.peer_stride}" if w.peer_stride > 1 else "; the peer at every k"))
        out(f"   load average before: {os.getloadavg()[0]:.2f} (2 cores)")
        rel = None
        if fn is not None:
            rel = run_relusv(fn, W, b, X, w, verify=not args.no_verify, repeats=args.repeats)
        started = time.perf_counter()

        def log(fit: PeerFit):
            print(f"   peer {w.key} k = {fit.k}: bound {fit.bound:.5g}, {fit.steps} steps, {fit.seconds:.1f} s "
                  f"(elapsed {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

        if w.large and args.large_without_peer and rel is not None:
            t0 = max(float(rel.truncation[0]), 1e-30)
            keep = rel.truncation > ROUNDING_LEVEL * t0
            mt = float(np.mean(rel.bound[keep] / rel.truncation[keep]))
            seconds = statistics.median(rel.seconds)
            out(f"relusv {seconds:.1f} s wall, {statistics.median(rel.cpu_seconds):.1f} s processor time (fit stride {rel.fit_stride}, {int(rel.steps.sum())} Adam steps; best "
                f"candidates: {', '.join(f'{n} {rel.source.count(n)}' for n in sorted(set(rel.source)))}); "
                f"target <= {LARGE_SECONDS_TARGET:g} s: {'met' if seconds <= LARGE_SECONDS_TARGET else 'MISSED'}")
            out(f"mean bound / t_k over the whole curve: {mt:.4f}   target <= {LARGE_TRUNCATION_TARGET}: "
                f"{'met' if mt <= LARGE_TRUNCATION_TARGET else 'MISSED'} (no peer run)")
            if rel.recomputed:
                worst = max(abs(rep - exact) / max(exact, 1e-30) for rep, exact in rel.recomputed.values())
                out(f"relusv certificate at {len(rel.recomputed)} k: |reported/exact - 1| <= {worst:.1e}")
            continue
        cache = peer_cache_file(args.peer_cache, W, b, X, w) if args.peer_cache else None
        reused = [k for k in w.peer_ks if k in load_peer_fits(cache)]
        if reused:
            out(f"   peer: {len(reused)} of {len(w.peer_ks)} fits reused from {cache} (same inputs and peer code)")
        threads = args.peer_threads
        if len(reused) < len(w.peer_ks) and threads is None:
            trial = choose_peer_threads(W, b, X, w.peer_ks[len(w.peer_ks) // 2])
            threads = min(trial, key=trial.get)
            out(f"   peer threads: {threads} (seconds per step on a short trial: "
                f"{', '.join(f'{t} thread(s) {v * 1e3:.2f} ms' for t, v in trial.items())})")
        peer = run_peer(W, b, X, w, log, threads or 1, cache)
        out(f"   load average after the layer: {os.getloadavg()[0]:.2f} (2 cores)")
        if rel is None:
            out(f"   peer {peer.curve_seconds:.1f} s processor time ({peer.wall_seconds:.1f} s wall)")
            continue
        c = compare(w, W, b, X, peer, rel)
        print_table(w, c, out)
        print_summary(w, c, peer, rel, out)
        results.append((w, c, rel, {"W": W, "radius": radius}))
        summary.append((w, c))
    if not summary:
        return 0
    out()
    out("== summary (targets: no k more than 1 % above the peer; suite: mean ratio <= 0.85 and time ratio >= 10;"
        " large: <= 60 s and mean bound / t_k <= 0.80)")
    out("times: processor seconds (the peer: one thread; relusv: all its threads); wall: relusv's wall seconds")
    out(f"{'layer':<40} {'peer s':>9} {'relusv s':>9} {'wall s':>7} {'ratio':>7} {'max excess':>11} {'k > 1%':>6} "
        f"{'mean r/peer':>11} {'mean r/t_k':>10}")
    for w, c in summary:
        extrap = "*" if w.peer_stride > 1 else " "
        out(f"{w.title:<40} {c.peer_seconds:8.1f}{extrap} {c.relusv_seconds:9.2f} {c.relusv_wall_seconds:7.2f} "
            f"{c.time_ratio:6.1f}x "
            f"{100 * c.max_excess:+10.2f}% {c.over:6d} {c.mean_ratio:11.4f} {c.extras['mean_over_truncation']:10.4f}")
    suite = [c for w, c in summary if not w.large]
    if suite:
        out(f"suite: mean of the per-layer mean ratios {np.mean([c.mean_ratio for c in suite]):.4f}; "
            f"layers with a k above +1 %: {sum(c.over > 0 for c in suite)} of {len(suite)}; "
            f"smallest time ratio {min(c.time_ratio for c in suite):.1f}x")
    if any(w.peer_stride > 1 for w, _ in summary):
        out("* extrapolated: one k drawn from each block of consecutive k, time x block size; "
            "bounds compared at the sampled k only")
    plot(results, args.figure)
    out(f"figure: {args.figure}")
    if args.json:
        args.json.write_text(json.dumps([{"layer": w.title, "ks": c.ks, "sigma": c.sigma,
                                          "truncation_bound": c.truncation, "peer": c.peer, "relusv": c.relusv,
                                          "source": c.source, "peer_steps": c.peer_steps,
                                          "peer_seconds": c.peer_seconds, "relusv_seconds": c.relusv_seconds,
                                          "relusv_wall_seconds": c.relusv_wall_seconds,
                                          "time_ratio": c.time_ratio, "wall_ratio": c.wall_ratio, "max_excess": c.max_excess,
                                          "over": c.over, "mean_ratio": c.mean_ratio,
                                          "mean_over_truncation": c.extras["mean_over_truncation"]}
                                         for w, c in summary], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
