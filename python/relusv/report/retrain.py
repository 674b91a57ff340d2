"""Harmonic pruning with retraining (MATH.md section 8), through ``relusv.torch.harmonic_prune``.

Runs only when torch is installed and training data are given (the built-in
default uses its own training split). The network becomes a float64
``nn.Sequential`` of ``Linear`` / ``ReLU``; decisions and the retraining
criterion (accuracy more than 0.5 % below the start, the paper's rule) use
the same selection half of the data as the one-shot variant, retraining uses
the training data only (``batches`` Adam steps on seeded mini-batches), and
the accuracy of every accepted iteration is also measured on the evaluation
half, which plays no part in any decision. Pruning stops at the first cut
that leaves the selection accuracy more than ``tolerance`` below the start;
that cut is undone, so the last recorded state is the chosen one.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .model import LAYER_NAME, Network
from .pruning import layer_parameters, pruning_section, split_halves
from .source import network_module

RETRAIN_BATCHES = 50
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


RETRAINING = {"batches": RETRAIN_BATCHES, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
              "criterion": "selection accuracy more than 0.5 % below the start"}


def retraining_options(x_train: np.ndarray, y_train: np.ndarray, seed: int) -> dict:
    """``relusv.torch.harmonic_prune``'s retraining keywords: ``RETRAIN_BATCHES`` Adam steps on seeded shuffled
    mini-batches of the training data."""
    import torch

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(x_train, dtype=np.float64)),
                                       torch.from_numpy(np.asarray(y_train, dtype=np.int64))),
        batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return {"retrain": loader, "retrain_batches": RETRAIN_BATCHES,
            "optimizer": lambda params: torch.optim.Adam(params, lr=LEARNING_RATE)}


def available() -> bool:
    try:
        import torch  # noqa: F401

        from ..torch import harmonic_prune  # noqa: F401
    except Exception:  # torch missing or unusable
        return False
    return True


def harmonic_prune_retrained(network: Network, x: np.ndarray, y: np.ndarray, x_train: np.ndarray,
                             y_train: np.ndarray, tolerance: float, seed: int, names: List[str],
                             show_progress: Optional[bool] = None) -> Optional[dict]:
    """The retrained pruning path and the chosen ranks; ``None`` without torch or hidden layers."""
    hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
    if not hidden or x.shape[0] < 4 or len(x_train) == 0 or not available():
        return None
    import torch

    from ..torch import accuracy, harmonic_prune

    sel, ev = split_halves(x.shape[0], seed)
    torch.manual_seed(seed)
    model = network_module(network)
    index = {LAYER_NAME.format(i): i for i in hidden}  # network_module's names
    x_sel, y_sel = torch.from_numpy(x[sel]), torch.from_numpy(y[sel])
    x_ev, y_ev = torch.from_numpy(x[ev]), torch.from_numpy(y[ev])
    options = retraining_options(x_train, y_train, seed)
    evaluation = [accuracy(model, x_ev, y_ev)]
    start = accuracy(model, x_sel, y_sel)
    bar = _bar(show_progress, sum(min(network.layers[i].shape) - 1 for i in hidden))

    def after_iteration(done: int, total: int) -> bool:
        evaluation.append(accuracy(model, x_ev, y_ev))
        if bar is not None:
            bar.update(1)
        return False

    try:
        result = harmonic_prune(model, x_sel, y_sel, min_accuracy=start - tolerance - 1e-12, inplace=True,
                                progress=after_iteration, **options)
    finally:
        if bar is not None:
            bar.close()
    accepted = [r for r in result.history if r["accepted"] in (True, "True")]
    history = []
    for record, ev_acc in zip(accepted, evaluation):
        ranks = [int(r) for r in record["ranks"]]
        layer = None if record["layer"] in (None, "") else index[str(record["layer"])]
        history.append({
            "iteration": int(record["iteration"]), "layer": layer, "ranks": ranks,
            "parameters": sum(layer_parameters(l.shape, ranks[hidden.index(i)] if i in hidden else None)
                              for i, l in enumerate(network.layers)),
            "selection_accuracy": float(record["accuracy"]),
            "selection_accuracy_before_retraining": float(record["accuracy_before_retraining"]),
            "evaluation_accuracy": float(ev_acc), "retrained": record["retrained"] in (True, "True"),
        })
    return pruning_section(
        "retrained", network, hidden, names, tolerance, sel, ev, history[0]["ranks"], history, history[-1],
        training_points=int(len(x_train)), retraining=RETRAINING, stop_reason=result.stop_reason)


def _bar(show: Optional[bool], total: int):
    from ..layer_table import progress_bar

    bar = progress_bar(None, "harmonic pruning with retraining", total=total, show=show)
    return bar if bar is not None else None
