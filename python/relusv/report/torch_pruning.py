"""Harmonic pruning of a torch model in the report (MATH.md sections 8-9), through ``relusv.torch.harmonic_prune``.

One route for every torch model the report prunes (any model; a chain of linear layers built by
``retrain.py``): the layers that feed a ReLU (directly or through a residual sum) become double layers, the
cuts follow the bisection schedule, and with training data every cut is followed by a short retraining
(``RETRAINING``); without, one-shot. The
report's three seeded disjoint sets (``pruning.report_sets``) play their parts: the selection set chooses the
cuts, the stopping set keeps a cut only while its accuracy stays within the tolerance of the start, and the
evaluation set is only measured. Parameters are those of the model as ``harmonic_prune`` returns it (each
layer in its cheaper form, ``relusv.params``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from .pruning import report_sets, section

RETRAIN_BATCHES = 50
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


RETRAINING = {"batches": RETRAIN_BATCHES, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
              "criterion": "after every cut (learning rate cosine-annealed to 0); the cut is kept while the "
                           "stopping-set accuracy stays within the tolerance of the start, retried up to "
                           "harmonic_prune's patience before a refusal; a final retraining after the last cut"}


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


def harmonic_prune_torch(module, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, layers: List[dict],
                         show_progress: Optional[bool] = None,
                         train: Optional[Tuple[np.ndarray, np.ndarray]] = None,
                         trials: Optional[int] = None) -> Optional[dict]:
    """The pruning path and the chosen ranks of ``module``; ``None`` when there is nothing to prune or too little
    data. ``layers``: the report's layer section (names, shapes and indices of the pruned layers); ``train``:
    training inputs and targets (retraining after every cut), or None (one-shot); ``trials``: at most this many
    trial cuts (``ReportSettings.pruning_trials``)."""
    index = {layer["name"]: layer["index"] for layer in layers}
    shapes = {layer["name"]: list(layer["shape"]) for layer in layers}
    return prune_module(module, x, y, tolerance, seed, index, shapes, show_progress, train, trials=trials)


def prune_module(module, x: np.ndarray, y: np.ndarray, tolerance: float, seed: int, index: Dict[str, int],
                 shapes: Dict[str, List[int]], show_progress: Optional[bool] = None,
                 train: Optional[Tuple[np.ndarray, np.ndarray]] = None, layers: Optional[List[str]] = None,
                 parameters_before: Optional[int] = None, trials: Optional[int] = None) -> Optional[dict]:
    """The report's pruning section for a torch ``module`` (see the module docstring); ``index`` maps the pruned
    layers' names to the report's layer indices, ``shapes`` to the shapes of their ``W``."""
    import torch

    from ..params import model_counts
    from ..torch import harmonic_prune

    if x.shape[0] < 6 or (train is not None and len(train[0]) == 0):
        return None
    sel, stop, ev = sets = report_sets(x.shape[0], seed)
    options: dict = {"stop_data": (torch.from_numpy(x[stop]), torch.from_numpy(y[stop])),
                     "test_data": (torch.from_numpy(x[ev]), torch.from_numpy(y[ev])), "tolerance": tolerance,
                     "progress": show_progress, "layers": layers, "max_iterations": trials}
    if train is not None:
        torch.manual_seed(seed)
        options.update(retraining_options(*train, seed))
    result = harmonic_prune(module, torch.from_numpy(x[sel]), torch.from_numpy(y[sel]), **options)
    if not result.layers:
        return None
    history, chosen = _path(result, index, train is not None)
    hidden = [index[name] for name in result.layers]
    before = parameters_before if parameters_before is not None else model_counts(module).stored.parameters
    details = {"stop_reason": result.stop_reason, "trials": len(result.history) - 1 - _final_records(result)}
    if train is not None:
        details.update(training_points=int(len(train[0])), retraining=RETRAINING)
    return section("retrained" if train is not None else "one-shot", hidden, list(result.layers),
                   [shapes[name] for name in result.layers], before, tolerance, sets, history[0]["ranks"],
                   history, chosen, **details)


def _final_records(result) -> int:
    """1 when the history ends with ``harmonic_prune``'s final retraining (a record without a layer), else 0."""
    return int(len(result.history) > 1 and result.history[-1]["layer"] in (None, ""))


def _path(result, index: Dict[str, int], retrained: bool) -> Tuple[List[dict], dict]:
    """The path (the start and every kept cut) and the chosen state: the model as returned, which is the last
    kept cut after the final retraining when that was kept (at the last cut's iteration, with its ranks)."""
    cuts = result.accepted if not _final_records(result) else [
        r for r in result.accepted if r is not result.history[-1]]
    history = [_entry(r, index, retrained) for r in cuts]
    chosen = _entry(result.accepted[-1], index, retrained)
    chosen["iteration"] = history[-1]["iteration"]
    return history, chosen


def _entry(record: dict, index: Dict[str, int], retrained: bool) -> dict:
    entry = {"iteration": int(record["iteration"]),
             "layer": None if record["layer"] in (None, "") else index[record["layer"]],
             "ranks": [int(k) for k in record["ranks"]], "parameters": int(record["parameters"]),
             "selection_accuracy": float(record["selection_accuracy"]),
             "stopping_accuracy": float(record["accuracy"]), "evaluation_accuracy": float(record["test_accuracy"])}
    if retrained:
        before = record["selection_accuracy_before_retraining"]
        entry["selection_accuracy_before_retraining"] = float(entry["selection_accuracy"] if before is None
                                                              else before)
        entry["retrained"] = bool(record["retrained"])
    return entry
