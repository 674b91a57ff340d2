"""The paper's procedure for upper bounds of ReLU singular values, in PyTorch on the CPU.

This is the peer relusv is measured against (MATH.md section 3, as the paper's
reference notebook does it): for every rank ``k`` an independent fit

    minimise  F(U, V) = sum_{x in X} || ReLU(U V x + b) - ReLU(W x + b) ||^2

over ``U`` (m x k) and ``V`` (k x n) with Adam (learning rate 1e-3, full batch,
the bias ``b`` fixed), started from the truncated SVD
``U = U_k Sigma_k^{1/2}``, ``V = Sigma_k^{1/2} V_k^T``. The loss is evaluated
every ``eval_every`` steps; the best evaluated factors are kept. Early stopping:
once there are ten evaluation periods, stop as soon as the loss fell in fewer
than 5 of the last 10 evaluations and the last evaluation is not the best.
The reported bound is ``max_{x in X} || ReLU(W x + b) - ReLU(U V x + b) ||``
for the best factors (evaluated in float64, so it is exact up to rounding of
the factors themselves).

The peer is given every advantage that does not change the procedure: the SVD
of ``W`` and the target ``ReLU(X W^T + b)`` are computed once per curve rather
than once per fit, and the loss used for evaluation is the one of the forward
pass that feeds the gradient (no extra pass). ``k = 0`` needs no fit (the only
rank-0 matrix is zero). Rows of ``X`` are points.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional

import numpy as np
import torch

LEARNING_RATE = 1e-3
EVAL_EVERY = 10
WINDOW = 10            # evaluations looked back on by the stopping rule
MIN_FALLS = 5          # stop when the loss fell in fewer than this many of them
MAX_STEPS = 20_000     # safety cap; reaching it is reported per fit


@dataclass(frozen=True)
class PeerFit:
    """One rank's result: the certified bound of the best evaluated factors."""

    k: int
    bound: float
    best_loss: float
    steps: int
    seconds: float          # wall time of the fit
    hit_cap: bool
    cpu_seconds: float = float("nan")   # processor time of the fit (all threads of the process)


def should_stop(losses: List[float], window: int = WINDOW, min_falls: int = MIN_FALLS) -> bool:
    """The notebook's early-stopping rule on the evaluated losses so far.

    After ``window`` evaluation periods (``window + 1`` evaluations), stop once
    the loss fell (``L_i < L_{i-1}``) in fewer than ``min_falls`` of the last
    ``window`` evaluations and the last evaluation is not the best one.
    """
    if len(losses) <= window:
        return False
    recent = losses[-window - 1:]
    falls = sum(1 for before, after in zip(recent, recent[1:]) if after < before)
    return falls < min_falls and losses[-1] > min(losses)


def max_error(W: np.ndarray, b: np.ndarray, X: np.ndarray, L: np.ndarray, chunk: int = 4096) -> float:
    """``max_x || ReLU(W x + b) - ReLU(L x + b) ||`` over the rows of X, in float64."""
    W64, L64, b64 = (np.asarray(a, dtype=np.float64) for a in (W, L, b))
    worst = 0.0
    for start in range(0, X.shape[0], chunk):
        x = np.asarray(X[start:start + chunk], dtype=np.float64)
        e = np.maximum(x @ W64.T + b64, 0.0) - np.maximum(x @ L64.T + b64, 0.0)
        worst = max(worst, float(np.sqrt(np.einsum("ij,ij->i", e, e)).max(initial=0.0)))
    return worst


class PaperPeer:
    """Fits ranks of one layer ``ReLU(W x + b)`` over the data ``X`` independently, as the paper does.

    ``dtype`` is the precision of the fit (the inputs are converted once);
    torch uses its default thread count (all cores) unless ``threads`` is given.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, X: np.ndarray, *, dtype: torch.dtype = torch.float32,
                 lr: float = LEARNING_RATE, eval_every: int = EVAL_EVERY, max_steps: int = MAX_STEPS,
                 threads: Optional[int] = None):
        if threads is not None:
            torch.set_num_threads(threads)
        self.W_np, self.b_np, self.X_np = W, b, X
        self.lr, self.eval_every, self.max_steps = lr, eval_every, max_steps
        self.W = torch.as_tensor(np.ascontiguousarray(W)).to(dtype)
        self.b = torch.as_tensor(np.ascontiguousarray(b)).to(dtype)
        self.X = torch.as_tensor(np.ascontiguousarray(X)).to(dtype)
        with torch.no_grad():
            self.Y = torch.relu(self.X @ self.W.T + self.b)
            self.U_svd, self.S_svd, self.Vh_svd = torch.linalg.svd(self.W, full_matrices=False)

    def fit(self, k: int) -> PeerFit:
        start, cpu = time.perf_counter(), time.process_time()
        m, n = self.W.shape
        if k == 0:
            bound = max_error(self.W_np, self.b_np, self.X_np, np.zeros((m, n)))
            return PeerFit(0, bound, float("nan"), 0, time.perf_counter() - start, False,
                           time.process_time() - cpu)
        root = self.S_svd[:k].sqrt()
        U = (self.U_svd[:, :k] * root).clone().requires_grad_(True)
        V = (root[:, None] * self.Vh_svd[:k]).clone().requires_grad_(True)
        optimiser = torch.optim.Adam([U, V], lr=self.lr)
        losses: List[float] = []
        best_loss, best = math.inf, (U.detach().clone(), V.detach().clone())
        step, hit_cap = 0, False
        while True:
            optimiser.zero_grad(set_to_none=True)
            Z = (self.X @ V.T) @ U.T + self.b
            loss = (torch.relu(Z) - self.Y).square().sum()
            if step % self.eval_every == 0:
                value = loss.item()
                losses.append(value)
                if value < best_loss:
                    best_loss, best = value, (U.detach().clone(), V.detach().clone())
                if should_stop(losses):
                    break
            if step >= self.max_steps:
                hit_cap = True
                break
            loss.backward()
            optimiser.step()
            step += 1
        L = (best[0].double() @ best[1].double()).numpy()
        bound = max_error(self.W_np, self.b_np, self.X_np, L)
        return PeerFit(k, bound, best_loss, step, time.perf_counter() - start, hit_cap,
                       time.process_time() - cpu)

    def curve(self, ks: Iterable[int], progress=None) -> List[PeerFit]:
        fits = []
        for k in ks:
            fits.append(self.fit(int(k)))
            if progress is not None:
                progress(fits[-1])
        return fits
