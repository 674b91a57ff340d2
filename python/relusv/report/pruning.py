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

import contextlib
from typing import List, Optional

import numpy as np

from ..layer_table import progress_bar
from . import library
from .model import Network


def layer_parameters(shape, rank: Optional[int]) -> int:
    """Parameters of a layer kept at ``rank`` (``None``: unpruned): ``min(r (m + n), m n) + m``."""
    m, n = shape
    if rank is None:
        return m * n + m
    return min(rank * (m + n), m * n) + m


class _Truncations:
    """The SVD of each pruned layer, giving its weight at any rank."""

    def __init__(self, network: Network, layers: List[int], initial_ranks: List[int]):
        self.network = network
        self.layers = layers
        self.factors = {i: library.svd_factors(network.layers[i].weight) for i in layers}
        self.initial = dict(zip(layers, initial_ranks))   # the numerical ranks of the analysis table

    def weight(self, i: int, r: int) -> np.ndarray:
        """Layer ``i``'s weight at rank ``r`` (the original weight at its numerical rank)."""
        if r == self.initial[i]:
            return self.network.layers[i].weight
        u, s, vt = self.factors[i]
        return (u[:, :r] * s[:r]) @ vt[:r]

    def weights(self, ranks: dict) -> List[np.ndarray]:
        return [layer.weight if i not in ranks else self.weight(i, ranks[i])
                for i, layer in enumerate(self.network.layers)]

    def relative_cut(self, i: int, r: int) -> float:
        s = self.factors[i][1]
        return float(s[r - 1] / s[0]) if s[0] > 0 else 0.0


def _accuracy(network: Network, weights, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(network.predict(x, weights) == y))


def _accuracy_from(network: Network, weights, start: int, h: np.ndarray, y: np.ndarray) -> float:
    """Accuracy when the activations entering layer ``start`` are ``h`` (the layers before are unchanged)."""
    for i in range(start, len(network.layers)):
        layer = network.layers[i]
        h = h @ weights[i].T + layer.bias
        if layer.relu:
            h = np.maximum(h, 0.0)
    return float(np.mean(h.argmax(axis=1) == y))


def _single_threaded_blas():
    """Limit BLAS to one thread if threadpoolctl is installed: the products here are small, and
    threads only add synchronisation (badly so on a busy machine)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def harmonic_prune_one_shot(network: Network, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int,
                            names: List[str], initial_ranks: List[int],
                            show_progress: Optional[bool] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks; ``None`` when there is nothing to prune or too little data.

    ``names`` and ``initial_ranks``: the qualified names and numerical ranks of the hidden layers (from the
    analysis table, so the report states one rank per layer)."""
    hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
    if not hidden or x.shape[0] < 4:
        return None
    with _single_threaded_blas():
        return _prune(network, x, y, tolerance, seed, hidden, names, initial_ranks, show_progress)


def split_halves(points: int, seed: int):
    """``(selection, evaluation)``: sorted indices of two seeded halves of ``range(points)``."""
    order = np.random.default_rng(seed).permutation(points)
    half = points // 2
    return np.sort(order[:half]), np.sort(order[half:])


def _prune(network: Network, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, hidden: List[int],
           names: List[str], initial_ranks: List[int], show_progress: Optional[bool]) -> dict:
    sel, ev = split_halves(x.shape[0], seed)
    trunc = _Truncations(network, hidden, initial_ranks)
    ranks = dict(trunc.initial)

    def params(current) -> int:
        return sum(layer_parameters(layer.shape, current.get(i)) for i, layer in enumerate(network.layers))

    weights = trunc.weights(ranks)
    base_sel = _accuracy(network, weights, x[sel], y[sel])
    base_ev = _accuracy(network, weights, x[ev], y[ev])
    history = [{"iteration": 0, "layer": None, "ranks": [ranks.get(i) for i in hidden],
                "parameters": params(ranks), "selection_accuracy": base_sel, "evaluation_accuracy": base_ev}]
    total = sum(r - 1 for r in ranks.values() if r > 1)
    for it in progress_bar(range(1, total + 1), "harmonic pruning", total=total, show=show_progress):
        acts = network.activations(x[sel], weights)  # inputs of every layer in the current state
        best = None
        for i in hidden:
            if ranks[i] <= 1:
                continue
            trial = list(weights)
            trial[i] = trunc.weight(i, ranks[i] - 1)
            acc = _accuracy_from(network, trial, i, acts[i], y[sel])
            key = (acc, -trunc.relative_cut(i, ranks[i]))
            if best is None or key > best[0]:
                best = (key, i, acc, trial[i])
        _, i, acc, w = best
        ranks[i] -= 1
        weights[i] = w
        history.append({"iteration": it, "layer": i, "ranks": [ranks.get(j) for j in hidden],
                        "parameters": params(ranks), "selection_accuracy": acc,
                        "evaluation_accuracy": _accuracy(network, weights, x[ev], y[ev])})
    chosen = history[0]
    for record in history:
        if record["selection_accuracy"] < base_sel - tolerance:
            break
        chosen = record
    return pruning_section("one-shot", network, hidden, names, tolerance, sel, ev, [trunc.initial[i] for i in hidden],
                           history, chosen)


def pruning_section(method: str, network: Network, hidden: List[int], names: List[str], tolerance: float,
                    sel: np.ndarray,
                    ev: np.ndarray, initial_ranks: List[int], history: List[dict], chosen: dict,
                    **details) -> dict:
    """The report's pruning section (schema ``pruning``) for a path ``history``
    whose first record is the unpruned network; ``details`` are method-specific."""
    return {
        "method": method,
        "retrained": method == "retrained",
        "tolerance": tolerance,
        "layers": hidden,
        "names": names,
        "shapes": [list(network.layers[i].shape) for i in hidden],
        "initial_ranks": initial_ranks,
        "selection_points": int(sel.size),
        "evaluation_points": int(ev.size),
        **details,
        "parameters_before": network.parameters,
        "history": history,
        "chosen": {key: chosen[key] for key in ("iteration", "ranks", "parameters", "selection_accuracy",
                                                "evaluation_accuracy")},
        "baseline": {key: history[0][key] for key in ("selection_accuracy", "evaluation_accuracy")},
    }
