"""One-shot harmonic pruning of a torch model that is not a chain of linear layers (MATH.md sections 8-9).

``relusv.torch.harmonic_prune`` (no retraining) cuts one rank at a time from
the Linear / Conv2d layers that feed a ReLU (a convolution's ``W`` is its
kernel matrix ``K_mat``), choosing each cut on the *selection* half of the
data; the accuracy of the *evaluation* half is recorded after every
iteration. The halves, the tolerance and the choice of the reported ranks
are those of the chain pruning (``pruning.split_halves``,
``pruning.chosen_record``), so both report the same section.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .pruning import chosen_record, section, split_halves


def harmonic_prune_torch(module, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, layers: List[dict],
                         show_progress: Optional[bool] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks of ``module``; ``None`` when there is nothing to prune or too little
    data. ``layers``: the report's layer section (names, shapes and indices of the pruned layers)."""
    import torch

    from ..torch import harmonic_prune

    if x.shape[0] < 4:
        return None
    sel, ev = split_halves(x.shape[0], seed)
    result = harmonic_prune(module, torch.from_numpy(x[sel]), torch.from_numpy(y[sel]),
                            test_data=(torch.from_numpy(x[ev]), torch.from_numpy(y[ev])), progress=show_progress)
    if not result.layers:
        return None
    index = {layer["name"]: layer["index"] for layer in layers}
    hidden = [index[name] for name in result.layers]
    history = [{"iteration": int(r["iteration"]), "layer": None if r["layer"] is None else index[r["layer"]],
                "ranks": [int(k) for k in r["ranks"]], "parameters": int(r["parameters"]),
                "selection_accuracy": float(r["accuracy"]), "evaluation_accuracy": float(r["test_accuracy"])}
               for r in result.history]
    return section("one-shot", hidden, list(result.layers), [list(layers[i]["shape"]) for i in hidden],
                   history[0]["parameters"], tolerance, sel, ev, history[0]["ranks"], history,
                   chosen_record(history, tolerance))
