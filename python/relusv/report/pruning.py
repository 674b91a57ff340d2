"""One-shot harmonic pruning (MATH.md section 8 without retraining), in NumPy.

Each hidden layer's weight ``W = U diag(s) V^T`` is replaced by its rank-r
truncation; every layer is counted in the cheaper of its dense and factored
forms (``relusv.params.layer_count``: ``r (m + n)`` numbers instead of ``m n``
below the break-even rank ``m n / (m + n)``). Starting from the numerical
ranks, every iteration tries cutting the smallest kept singular value of each
hidden layer, measures the accuracy on the *selection* set, and cuts where
accuracy drops least (``relusv.pruning_rules.choose_cut``, the rule of the torch
route too). It runs until every hidden layer has rank 1, recording the whole path.

Three seeded disjoint sets (``report_sets``): the selection set chooses the
cuts, the *stopping* set chooses the reported point (the last of the path
before its accuracy first falls more than ``tolerance`` below the start), and
the *evaluation* set takes no part in any decision: its accuracy is the one
reported as held out (``guarantee``).
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .._workers import one_blas_thread
from ..layer_table import progress_bar
from ..params import layer_count
from ..pruning_rules import choose_cut, split_sets
from . import library
from .model import Network

SET_FRACTIONS = (1 / 3, 1 / 3, 1 / 3)
"""Selection, stopping and evaluation sets: thirds of the report's data."""


def report_sets(points: int, seed: int):
    """``(selection, stopping, evaluation)``: sorted indices of three seeded disjoint thirds of ``range(points)``."""
    return tuple(split_sets(points, seed, SET_FRACTIONS))


def network_parameters(network: Network, ranks: dict) -> int:
    """Parameters of ``network`` with layer ``i`` at rank ``ranks[i]`` (others at their rank as stored), each
    layer in its cheaper form (``relusv.params.layer_count``)."""
    total = 0
    for i, layer in enumerate(network.layers):
        m, n = layer.shape
        rank = ranks.get(i, layer.factors[0].shape[1] if layer.factors is not None else None)
        total += layer_count(m, n, rank, bias=True).parameters
    return total


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


def harmonic_prune_one_shot(network: Network, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int,
                            names: List[str], initial_ranks: List[int],
                            show_progress: Optional[bool] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks; ``None`` when there is nothing to prune or too little data.

    ``names`` and ``initial_ranks``: the qualified names and numerical ranks of the hidden layers (from the
    analysis table, so the report states one rank per layer)."""
    hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
    if not hidden or x.shape[0] < 6:
        return None
    with one_blas_thread():   # the products here are small: threads only add synchronisation
        return _prune(network, x, y, tolerance, seed, hidden, names, initial_ranks, show_progress)


def _prune(network: Network, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, hidden: List[int],
           names: List[str], initial_ranks: List[int], show_progress: Optional[bool]) -> dict:
    sets = report_sets(x.shape[0], seed)
    sel = sets[0]
    trunc = _Truncations(network, hidden, initial_ranks)
    ranks = dict(trunc.initial)
    weights = trunc.weights(ranks)
    history = [_record(network, 0, None, ranks, hidden, weights, x, y, sets)]
    total = sum(r - 1 for r in ranks.values() if r > 1)
    for it in progress_bar(range(1, total + 1), "harmonic pruning", total=total, show=show_progress):
        acts = network.activations(x[sel], weights)  # inputs of every layer in the current state
        options = []
        for i in (i for i in hidden if ranks[i] > 1):
            trial = list(weights)
            trial[i] = trunc.weight(i, ranks[i] - 1)
            options.append((_accuracy_from(network, trial, i, acts[i], y[sel]), trunc.relative_cut(i, ranks[i]), i,
                            trial[i]))
        _, _, i, w = options[choose_cut([option[:2] for option in options])]
        ranks[i] -= 1
        weights[i] = w
        history.append(_record(network, it, i, ranks, hidden, weights, x, y, sets))
    return pruning_section("one-shot", network, hidden, names, tolerance, sets, [trunc.initial[i] for i in hidden],
                           history, chosen_record(history, tolerance))


def _record(network: Network, iteration: int, layer: Optional[int], ranks: dict, hidden: List[int], weights,
            x: np.ndarray, y: np.ndarray, sets) -> dict:
    sel, stop, ev = sets
    return {"iteration": iteration, "layer": layer, "ranks": [ranks.get(i) for i in hidden],
            "parameters": network_parameters(network, ranks),
            "selection_accuracy": _accuracy(network, weights, x[sel], y[sel]),
            "stopping_accuracy": _accuracy(network, weights, x[stop], y[stop]),
            "evaluation_accuracy": _accuracy(network, weights, x[ev], y[ev])}


def chosen_record(history: List[dict], tolerance: float) -> dict:
    """The last record of the path before the stopping-set accuracy first falls below the first record's minus
    ``tolerance``."""
    chosen = history[0]
    for record in history:
        if record["stopping_accuracy"] < history[0]["stopping_accuracy"] - tolerance:
            break
        chosen = record
    return chosen


ACCURACIES = ("selection_accuracy", "stopping_accuracy", "evaluation_accuracy")


def guarantee(p: dict) -> str:
    """What a pruning section promises and on which set, with the held-out drop measured apart from it."""
    b, c = p["baseline"], p["chosen"]
    drop = 100 * (b["evaluation_accuracy"] - c["evaluation_accuracy"])
    return (f"within {100 * p['tolerance']:g} pt of the start on the stopping set ({p['stopping_points']} points: "
            f"{100 * b['stopping_accuracy']:.2f}% -> {100 * c['stopping_accuracy']:.2f}%); held-out drop "
            f"{drop:.2f} pt on the evaluation set ({p['evaluation_points']} points: "
            f"{100 * b['evaluation_accuracy']:.2f}% -> {100 * c['evaluation_accuracy']:.2f}%)")


def pruning_section(method: str, network: Network, hidden: List[int], names: List[str], tolerance: float,
                    sets, initial_ranks: List[int], history: List[dict], chosen: dict, **details) -> dict:
    """The report's pruning section (schema ``pruning``) for a path ``history``
    whose first record is the unpruned network; ``details`` are method-specific."""
    return section(method, hidden, names, [list(network.layers[i].shape) for i in hidden], network.parameters,
                   tolerance, sets, initial_ranks, history, chosen, **details)


def section(method: str, hidden: List[int], names: List[str], shapes: List[List[int]], parameters_before: int,
            tolerance: float, sets, initial_ranks: List[int], history: List[dict], chosen: dict,
            **details) -> dict:
    """``pruning_section`` for any model: ``shapes`` of the pruned layers' ``W`` (``K_mat``), ``parameters_before``
    of the unpruned model as stored, ``sets`` the (selection, stopping, evaluation) indices."""
    sel, stop, ev = sets
    p = {
        "method": method,
        "retrained": method == "retrained",
        "tolerance": tolerance,
        "layers": hidden,
        "names": names,
        "shapes": shapes,
        "initial_ranks": initial_ranks,
        "selection_points": int(sel.size),
        "stopping_points": int(stop.size),
        "evaluation_points": int(ev.size),
        **details,
        "parameters_before": parameters_before,
        "history": history,
        "chosen": {key: chosen[key] for key in ("iteration", "ranks", "parameters", *ACCURACIES)},
        "baseline": {key: history[0][key] for key in ACCURACIES},
    }
    p["guarantee"] = guarantee(p)
    return p
