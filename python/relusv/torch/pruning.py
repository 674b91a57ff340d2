"""Harmonic pruning (MATH.md section 8): lowering layer ranks one at a time.

Every iteration removes one rank from one layer: for each prunable layer the
network's held-out accuracy is measured with that layer's smallest non-zero
singular value set to zero (its rank-(r-1) truncation), and the layer that
loses least is replaced by a ``DoubleLinear`` (``DoubleConv2d`` for a
convolution, whose ``W`` is the kernel matrix ``K_mat``, MATH.md section 9)
holding the factors of that truncation, so retraining cannot raise its rank
again. Retraining and stopping
follow the criteria the caller chooses.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .. import _arrays
from .._progress import Progress, ProgressOption
from ._layers import TrainingModes, forward, model_device, predicted_labels, replace_module, unwrap, weight_of
from .discovery import layer_kind, relu_layers
from .double_conv import DoubleConv2d
from .double_linear import DoubleLinear
from .history import History
from .probe import ProbeSet, class_targets

Retrain = Union[Callable[[nn.Module], Any], Iterable]


def accuracy(model: nn.Module, x: Any, y: Any = None, batch_size: int = 1024,
             predict: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> float:
    """Fraction of ``(x, y)`` the model classifies correctly, in eval mode without gradients.

    ``x``, ``y`` as for ``Monitor`` (tensors, arrays, or a dataset of pairs with
    ``y=None``). Module modes and the CPU random generator are restored.
    """
    probe = ProbeSet(*_arrays.loader_points(x, y), batch_size)  # a DataLoader is read once
    predict = predict or predicted_labels
    model = unwrap(model)
    device = model_device(model)
    modes = TrainingModes(model)
    hits = 0
    try:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            for j in range(probe.batches):
                _, _, inputs, targets = probe.batch(j)
                output = forward(model, inputs, device)
                labels = torch.as_tensor(predict(output)).reshape(-1).cpu()
                hits += int((labels == class_targets(targets, output).to(labels.dtype)).sum())
    finally:
        modes.restore()
    return hits / len(probe)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cut(module: nn.Module, rank: int) -> nn.Module:
    """The rank-``rank`` truncation of a layer as factors, per kind of layer (MATH.md sections 8 and 9)."""
    if isinstance(module, (nn.Conv2d, DoubleConv2d)):
        return DoubleConv2d.from_conv(module, rank)
    return DoubleLinear.from_linear(module, rank)


def _prunable(module: nn.Module) -> bool:
    return layer_kind(module) == "linear" or isinstance(module, DoubleConv2d) or \
        (isinstance(module, nn.Conv2d) and module.groups == 1)


def numerical_rank(module: nn.Module) -> int:
    """Number of singular values of ``W`` above ``max(m, n) * eps * sigma_0`` (NumPy's rule).

    For a convolution ``W`` is the kernel matrix ``K_mat`` (``C_out x C_in kh kw``).
    """
    from .. import singular_values

    w = weight_of(module).cpu()
    w = w.reshape(w.shape[0], -1)
    sigma = np.asarray(singular_values(w.numpy()))
    if sigma.size == 0 or sigma[0] == 0:
        return 0
    tolerance = max(w.shape) * np.finfo(w.numpy().dtype).eps * sigma[0]
    rank = int((sigma > tolerance).sum())
    return min(rank, module.rank) if isinstance(module, (DoubleLinear, DoubleConv2d)) else rank


class _LoaderRetraining:
    """Retraining from a data loader: ``batches`` optimiser steps, cycling through the loader."""

    def __init__(self, loader: Iterable, batches: int, optimizer: Optional[Callable], loss: Optional[Callable]):
        self.loader, self.batches = loader, batches
        self.optimizer = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-3))
        self.loss = loss or nn.CrossEntropyLoss()
        self.iterator = None

    def _next(self):
        for _ in range(2):
            if self.iterator is None:
                self.iterator = iter(self.loader)
            try:
                return next(self.iterator)
            except StopIteration:
                self.iterator = None
        raise ValueError("the retraining data loader yields no batches")

    def __call__(self, model: nn.Module) -> None:
        # Layers are replaced between calls, so the optimiser is built afresh each time.
        optimizer = self.optimizer([p for p in model.parameters() if p.requires_grad])
        device = model_device(model)
        modes = TrainingModes(model)
        try:
            model.train()
            for _ in range(self.batches):
                inputs, targets = self._next()[:2]
                optimizer.zero_grad()
                self.loss(forward(model, inputs, device), targets.to(device)).backward()
                optimizer.step()
        finally:
            modes.restore()
            for p in model.parameters():
                p.grad = None


@dataclass
class PruneResult:
    """The pruned model, its layer names, and one history record per iteration.

    ``history[i]`` has ``iteration`` (0 is the network as given), ``layer`` (the
    layer cut), ``ranks`` (one per entry of ``layers``), ``parameters``,
    ``accuracy`` (held-out, at the end of the iteration),
    ``accuracy_before_retraining``, ``retrained``, ``retrain_reasons`` and
    ``accepted`` (False for an iteration undone by the accuracy floor), and
    ``test_accuracy`` when ``test_data`` is given.
    ``stop_reason`` says why pruning ended.
    """

    model: nn.Module
    layers: List[str]
    history: History
    initial_accuracy: float
    stop_reason: str

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else {}
        ranks = dict(zip(self.layers, last.get("ranks", [])))
        return (f"PruneResult({len(self.history) - 1} iterations, stopped by {self.stop_reason!r}; accuracy "
                f"{self.initial_accuracy:.4f} -> {last.get('accuracy', float('nan')):.4f}; ranks {ranks}; "
                f"{last.get('parameters', 0):,} parameters)")


def harmonic_prune(model: nn.Module, x_val: Any, y_val: Any = None, *, retrain: Optional[Retrain] = None,
                   retrain_batches: int = 50, optimizer: Optional[Callable] = None, loss: Optional[Callable] = None,
                   retrain_drop: Optional[float] = 0.005, retrain_every: Optional[int] = None,
                   retrain_below_rank: Optional[int] = None, min_accuracy: Optional[float] = None,
                   max_parameters: Optional[int] = None, max_iterations: Optional[int] = None, min_rank: int = 1,
                   layers: Optional[Iterable[str]] = None, batch_size: int = 1024, inplace: bool = False,
                   predict: Optional[Callable] = None, test_data: Optional[Tuple[Any, Any]] = None,
                   progress: ProgressOption = None) -> PruneResult:
    """Harmonic pruning of a network of ``Linear`` / ``DoubleLinear`` / ``Conv2d`` / ``DoubleConv2d`` layers.

    Parameters
    ----------
    model : nn.Module
        Copied first unless ``inplace``.
    x_val, y_val
        Held-out data on which every accuracy is measured (as for ``accuracy``).
        The cuts are chosen on it too, so its accuracy is optimistic; pass
        ``test_data`` for an unbiased figure.
    retrain : callable or data loader, optional
        ``retrain(model)`` trains the current model in place (layers change
        between calls: build the optimiser inside); or an iterable of
        ``(inputs, targets)`` batches, of which ``retrain_batches`` are used per
        retraining with ``optimizer(params)`` (default Adam, lr 1e-3) and
        ``loss`` (default cross-entropy). Without it, nothing is retrained.
    retrain_drop : float or None, default 0.005
        Retrain when the accuracy after a cut is more than this below the
        accuracy of the network as given (the paper's 0.5 %).
    retrain_every : int, optional
        Retrain on every t-th iteration.
    retrain_below_rank : int, optional
        Retrain when the layer just cut has a rank below this.
    min_accuracy : float, optional
        Accuracy floor: when an iteration ends below it, the iteration is undone
        (recorded with ``accepted=False``) and pruning stops.
    max_parameters : int, optional
        Parameter budget: stop once the model has at most this many parameters.
    max_iterations : int, optional
    min_rank : int, default 1
        No layer is cut below this rank. Without a stop criterion, pruning goes
        on until every layer has this rank.
    layers : list of str, optional
        Qualified names of the layers to prune; default every prunable layer
        whose output feeds a ReLU (``relusv.torch.discover``: found by tracing,
        so ``F.relu`` in ``forward`` counts): ``Linear`` / ``DoubleLinear``, and
        ``Conv2d`` (``groups = 1``) / ``DoubleConv2d``, whose ``W`` is the kernel
        matrix and which a cut makes a ``DoubleConv2d``.
    test_data : (x_test, y_test), optional
        An independent set that takes no part in any decision; its accuracy is
        recorded after every iteration as ``test_accuracy``.
    progress : bool, callable or None
        A progress bar (``relusv.ProgressOption``); a callable ``f(done, total)``
        may return True to stop.

    Returns
    -------
    PruneResult

    Notes
    -----
    A ``Linear`` layer becomes a ``DoubleLinear`` at its first cut (a ``Conv2d``
    a ``DoubleConv2d``). While its rank ``r`` exceeds ``m n / (m + n)`` the
    factors hold more parameters than the plain layer (MATH.md sections 7 and
    9), so the recorded parameter count can rise at first; networks built from double layers (the paper's setting)
    only ever shrink.
    """
    if min_rank < 1:
        raise ValueError(f"min_rank must be at least 1, got {min_rank}")
    for name, value in (("retrain_every", retrain_every), ("retrain_batches", retrain_batches)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    work = model if inplace else copy.deepcopy(model)
    found = relu_layers(unwrap(work), layers, "harmonic_prune")
    names = [layer.name for layer in found if layers is not None or _prunable(layer.module)]
    target = unwrap(work)
    for name in names:
        if not _prunable(target.get_submodule(name)):
            module = target.get_submodule(name)
            why = (f" with groups = {module.groups}: a cut replaces the layer by a DoubleConv2d (a dense rank-r "
                   "bottleneck), which would mix the groups" if isinstance(module, nn.Conv2d) else "")
            raise TypeError(f"layer {name!r} is a {type(module).__name__}{why}; harmonic pruning "
                            f"needs Linear or DoubleLinear layers, or Conv2d (groups = 1) or DoubleConv2d layers")
    if retrain is not None and not callable(retrain):
        retrain = _LoaderRetraining(retrain, retrain_batches, optimizer, loss)

    x_val, y_val = _arrays.loader_points(x_val, y_val)  # a DataLoader is read once, not at every cut

    def evaluate() -> float:
        return accuracy(work, x_val, y_val, batch_size, predict)

    initial = evaluate()
    ranks = {name: numerical_rank(target.get_submodule(name)) for name in names}
    history = History()

    def record(iteration: int, layer: Optional[str], acc: float, before: float, retrained: bool,
               reasons: List[str], accepted: bool = True) -> None:
        entry = {"iteration": iteration, "layer": layer, "ranks": [ranks[n] for n in names],
                 "parameters": parameter_count(work), "accuracy": acc, "accuracy_before_retraining": before,
                 "retrained": retrained, "retrain_reasons": reasons, "accepted": accepted}
        if test_data is not None:
            entry["test_accuracy"] = accuracy(work, test_data[0], test_data[1], batch_size, predict)
        history.append(entry)

    record(0, None, initial, initial, False, [])
    total = sum(max(r - min_rank, 0) for r in ranks.values())
    bar = Progress("harmonic pruning", total, progress)
    snapshot = copy.deepcopy(target) if min_accuracy is not None else None
    iteration = 0
    stop_reason = "every layer at min_rank"
    try:
        while True:
            if min_accuracy is not None and history[-1]["accuracy"] < min_accuracy:
                stop_reason = "accuracy floor"
                break
            if max_parameters is not None and parameter_count(work) <= max_parameters:
                stop_reason = "parameter budget"
                break
            if max_iterations is not None and iteration >= max_iterations:
                stop_reason = "max_iterations"
                break
            best = None
            for name in names:
                if ranks[name] <= min_rank:
                    continue
                original = target.get_submodule(name)
                candidate = _cut(original, ranks[name] - 1)
                replace_module(target, name, candidate)
                try:
                    acc = evaluate()
                finally:
                    replace_module(target, name, original)
                if best is None or acc > best[0]:
                    best = (acc, name, candidate)
            if best is None:
                break
            iteration += 1
            cut_accuracy, name, candidate = best
            replace_module(target, name, candidate)
            previous_ranks = dict(ranks)
            ranks[name] -= 1
            reasons = []
            if retrain_drop is not None and initial - cut_accuracy > retrain_drop:
                reasons.append("accuracy drop")
            if retrain_every is not None and iteration % retrain_every == 0:
                reasons.append("every t-th iteration")
            if retrain_below_rank is not None and ranks[name] < retrain_below_rank:
                reasons.append("low rank")
            retrained = bool(reasons) and retrain is not None
            if retrained:
                retrain(work)
            final = evaluate() if retrained else cut_accuracy
            if min_accuracy is not None and final < min_accuracy:
                record(iteration, name, final, cut_accuracy, retrained, reasons, accepted=False)
                _restore(target, snapshot, names)
                ranks = previous_ranks
                stop_reason = "accuracy floor"
                break
            record(iteration, name, final, cut_accuracy, retrained, reasons)
            if snapshot is not None:
                snapshot = copy.deepcopy(target)
            if bar.update_to(iteration):  # a callable progress asked to cancel
                stop_reason = "cancelled"
                break
    finally:
        bar.close()
    return PruneResult(work, names, history, initial, stop_reason)


def _restore(target: nn.Module, snapshot: nn.Module, names: List[str]) -> None:
    """Puts the snapshot's layers and parameter values back into ``target`` (same objects kept elsewhere)."""
    for name in names:
        replace_module(target, name, copy.deepcopy(snapshot.get_submodule(name)))
    target.load_state_dict(snapshot.state_dict())
