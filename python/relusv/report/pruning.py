"""One-shot harmonic pruning (MATH.md section 8 without retraining), in NumPy.

Each hidden layer's weight ``W = U diag(s) V^T`` is replaced by its rank-r
truncation, kept as the factors ``U_{:, :r} diag(s_{:r})`` and ``V^T_{:r, :}``
(``r (m + n)`` numbers instead of ``m n`` when that is fewer). Starting from
the numerical ranks, every iteration tries cutting the smallest kept singular
value of each hidden layer, measures the accuracy on the *selection* half of
the data, and cuts where accuracy drops least (ties: the smallest singular
value relative to the layer's largest). It runs until every hidden layer has
rank 1, recording the whole path.

To keep the reported accuracies honest, the data are split in two seeded
halves: decisions use the selection half, the reported accuracy is that of
the other (evaluation) half. The chosen ranks are the last point of the path
before the selection accuracy first falls below the unpruned network's
minus ``tolerance``.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from . import library
from .analysis import numerical_rank, steps
from .model import Network


def layer_parameters(shape, rank: Optional[int]) -> int:
    """Parameters of a layer kept at ``rank`` (``None``: unpruned): ``min(r (m + n), m n) + m``."""
    m, n = shape
    if rank is None:
        return m * n + m
    return min(rank * (m + n), m * n) + m


class _Truncations:
    """The SVD of each pruned layer, giving its weight at any rank."""

    def __init__(self, network: Network, layers: List[int]):
        self.network = network
        self.layers = layers
        self.factors = {i: library.svd_factors(network.layers[i].weight) for i in layers}
        self.initial = {i: numerical_rank(self.factors[i][1], network.layers[i].shape) for i in layers}

    def weights(self, ranks: dict) -> List[np.ndarray]:
        out = []
        for i, layer in enumerate(self.network.layers):
            r = ranks.get(i)
            if r is None or r == self.initial[i]:
                out.append(layer.weight)
            else:
                u, s, vt = self.factors[i]
                out.append((u[:, :r] * s[:r]) @ vt[:r])
        return out

    def relative_cut(self, i: int, r: int) -> float:
        s = self.factors[i][1]
        return float(s[r - 1] / s[0]) if s[0] > 0 else 0.0


def _accuracy(network: Network, weights, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(network.predict(x, weights) == y))


def harmonic_prune_one_shot(network: Network, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int,
                            show_progress: Optional[bool] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks; ``None`` when there is nothing to prune or too little data."""
    hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
    if not hidden or x.shape[0] < 4:
        return None
    order = np.random.default_rng(seed).permutation(x.shape[0])
    half = x.shape[0] // 2
    sel, ev = np.sort(order[:half]), np.sort(order[half:])
    trunc = _Truncations(network, hidden)
    ranks = dict(trunc.initial)

    def params(current) -> int:
        return sum(layer_parameters(layer.shape, current.get(i)) for i, layer in enumerate(network.layers))

    base_weights = trunc.weights(ranks)
    base_sel = _accuracy(network, base_weights, x[sel], y[sel])
    base_ev = _accuracy(network, base_weights, x[ev], y[ev])
    history = [{"iteration": 0, "layer": None, "ranks": [ranks.get(i) for i in hidden],
                "parameters": params(ranks), "selection_accuracy": base_sel, "evaluation_accuracy": base_ev}]
    total = sum(r - 1 for r in ranks.values() if r > 1)
    for it in steps(range(1, total + 1), "harmonic pruning", total=total, show=show_progress):
        best = None
        for i in hidden:
            if ranks[i] <= 1:
                continue
            trial = dict(ranks)
            trial[i] -= 1
            acc = _accuracy(network, trunc.weights(trial), x[sel], y[sel])
            key = (acc, -trunc.relative_cut(i, ranks[i]))
            if best is None or key > best[0]:
                best = (key, i, acc)
        _, i, acc = best
        ranks[i] -= 1
        history.append({"iteration": it, "layer": i, "ranks": [ranks.get(j) for j in hidden],
                        "parameters": params(ranks), "selection_accuracy": acc,
                        "evaluation_accuracy": _accuracy(network, trunc.weights(ranks), x[ev], y[ev])})
    chosen = history[0]
    for record in history:
        if record["selection_accuracy"] < base_sel - tolerance:
            break
        chosen = record
    return {
        "method": "one-shot",
        "retrained": False,
        "tolerance": tolerance,
        "layers": hidden,
        "shapes": [list(network.layers[i].shape) for i in hidden],
        "initial_ranks": [trunc.initial[i] for i in hidden],
        "selection_points": int(sel.size),
        "evaluation_points": int(ev.size),
        "parameters_before": network.parameters,
        "history": history,
        "chosen": {"iteration": chosen["iteration"], "ranks": chosen["ranks"], "parameters": chosen["parameters"],
                   "selection_accuracy": chosen["selection_accuracy"],
                   "evaluation_accuracy": chosen["evaluation_accuracy"]},
        "baseline": {"selection_accuracy": base_sel, "evaluation_accuracy": base_ev},
    }
