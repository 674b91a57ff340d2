"""Harmonic pruning of a torch model that is not a chain of linear layers (MATH.md sections 8-9).

``relusv.torch.harmonic_prune`` (one-shot, or with retraining when training data are given) cuts one rank at a time from
the Linear / Conv2d layers that feed a ReLU (a convolution's ``W`` is its
kernel matrix ``K_mat``), choosing each cut on the *selection* half of the
data; the accuracy of the *evaluation* half is recorded after every
iteration. The halves, the tolerance and the choice of the reported ranks
are those of the chain pruning (``pruning.split_halves``,
``pruning.chosen_record``), so both report the same section.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .pruning import chosen_record, section, split_halves


def harmonic_prune_torch(module, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, layers: List[dict],
                         show_progress: Optional[bool] = None,
                         train: Optional[Tuple[np.ndarray, np.ndarray]] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks of ``module``; ``None`` when there is nothing to prune or too little
    data. ``layers``: the report's layer section (names, shapes and indices of the pruned layers).

    With ``train`` (training inputs and targets) the path retrains as the chain's retrained pruning does
    (``retrain.py``: Adam on seeded mini-batches of the training data when the selection accuracy falls more
    than 0.5 % below the start) and stops at the first cut that leaves it more than ``tolerance`` below the
    start, undone; without it, one-shot."""
    import torch

    from ..torch import harmonic_prune
    from .retrain import RETRAINING, retraining_options

    if x.shape[0] < 4 or (train is not None and len(train[0]) == 0):
        return None
    sel, ev = split_halves(x.shape[0], seed)
    x_sel, y_sel = torch.from_numpy(x[sel]), torch.from_numpy(y[sel])
    options: dict = {"test_data": (torch.from_numpy(x[ev]), torch.from_numpy(y[ev])), "progress": show_progress}
    if train is not None:
        from ..torch import accuracy

        torch.manual_seed(seed)
        options.update(retraining_options(*train, seed),
                       min_accuracy=accuracy(module, x_sel, y_sel) - tolerance - 1e-12)
    result = harmonic_prune(module, x_sel, y_sel, **options)
    if not result.layers:
        return None
    index = {layer["name"]: layer["index"] for layer in layers}
    hidden = [index[name] for name in result.layers]
    shapes = [list(layers[i]["shape"]) for i in hidden]
    records = [r for r in result.history if train is None or r["accepted"] in (True, "True")]
    history = [{"iteration": int(r["iteration"]), "layer": None if r["layer"] in (None, "") else index[r["layer"]],
                "ranks": [int(k) for k in r["ranks"]], "parameters": int(r["parameters"]),
                "selection_accuracy": float(r["accuracy"]), "evaluation_accuracy": float(r["test_accuracy"])}
               for r in records]
    if train is None:
        return section("one-shot", hidden, list(result.layers), shapes, history[0]["parameters"], tolerance, sel,
                       ev, history[0]["ranks"], history, chosen_record(history, tolerance))
    for entry, r in zip(history, records):
        entry["selection_accuracy_before_retraining"] = float(r["accuracy_before_retraining"])
        entry["retrained"] = r["retrained"] in (True, "True")
    return section("retrained", hidden, list(result.layers), shapes, history[0]["parameters"], tolerance, sel, ev,
                   history[0]["ranks"], history, history[-1], training_points=int(len(train[0])),
                   retraining=RETRAINING, stop_reason=result.stop_reason)
