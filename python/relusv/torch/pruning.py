"""Harmonic pruning (MATH.md section 8): the paper's algorithm, with a logarithmic schedule of cuts.

1. Every pruned layer becomes a double layer (``DoubleLinear``; ``DoubleConv2d`` for a convolution, whose ``W``
   is the kernel matrix ``K_mat``, MATH.md sections 7 and 9): the SVD of ``W`` at its numerical rank, split
   evenly between the two factors, so retraining cannot raise the rank again.
2. A cut: for each layer still open, its smallest singular directions are removed down to the rank the schedule
   proposes (``relusv.pruning_rules.Schedule``), the network's accuracy on the *selection* set is measured with
   that cut alone, and the cut that loses least is made (``pruning_rules.choose_cut``: ReLU-aware, through the
   whole network).
3. A short retraining (``retrain_batches`` optimiser steps, the paper's 50 batches) follows every cut.
4. The cut is kept when the accuracy on the *stopping* set stays at or above the floor (``tolerance`` below the
   start, or ``min_accuracy``). A short retraining moves that accuracy by about as much as a 1 pt tolerance, so
   a cut below the floor is retrained again, up to ``patience`` more times, before it is refused (a refusal is
   final for that rank of that layer, so a refusal by noise costs the most); a refused cut puts the network
   back as it was before the cut, and the schedule learns that the layer cannot go that low. Pruning ends when
   no layer can be tried lower.
5. A final retraining of ``final_retrainings`` rounds (with the same patience), kept when the stopping set stays
   at or above the floor.

With the default ``schedule="bisection"`` each trial shrinks the interval of ranks still undecided for one layer
by a constant factor, so the number of cuts is ``O(sum_l log r_l)``: it grows with the number of layers and
the log of the ranks; the retrainings are at most ``1 + patience`` per cut plus the final ones.
``schedule="single"`` cuts one rank at a time as the paper does.
Without ``retrain`` the same cuts are made one-shot (for models that cannot be retrained).

Counts come from ``relusv.params`` (each layer in the cheaper of its dense and factored forms); the returned
model is stored in exactly that form (``params.store_cheaper``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .. import _arrays
from .._progress import Progress, ProgressOption
from ..errors import InvalidInputError, InvalidTypeError
from ..params import model_counts, store_cheaper
from ..pruning_rules import Schedule, accuracy_floor, choose_cut, split_sets
from ._layers import TrainingModes, forward, model_device, predicted_labels, replace_module, unwrap, weight_of
from .discovery import layer_kind, relu_layers
from .double_conv import DoubleConv2d
from .double_linear import DoubleLinear
from .history import History
from .probe import ProbeSet, class_targets

Retrain = Union[Callable[[nn.Module], Any], Iterable, bool]
Data = Tuple[Any, Any]


def accuracy(model: nn.Module, x: Any, y: Any = None, batch_size: int = 1024,
             predict: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> float:
    """Fraction of ``(x, y)`` the model classifies correctly, in eval mode without gradients.

    ``x``, ``y`` as for ``Monitor`` (tensors, arrays, or a dataset of pairs with
    ``y=None``). Module modes and the CPU random generator are restored.

    Parameters
    ----------
    model : nn.Module
        The classifier (wrappers are unwrapped).
    x, y
        Inputs and class targets, or a dataset / ``DataLoader`` of pairs with ``y=None``.
    batch_size : int, default 1024
        Points per forward pass.
    predict : callable, optional
        ``predict(output) -> labels``; default argmax of the logits.

    Returns
    -------
    float
        The fraction in ``[0, 1]``.

    Raises
    ------
    InvalidInputError
        An empty set, inputs and targets of different lengths, ``batch_size``
        not positive, ``predict`` returning the wrong number of labels.
    InvalidTypeError
        Inputs without ``len()`` and indexing.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import accuracy
    >>> model = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.eye(2)), model.bias.zero_()
    >>> accuracy(model, torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 1, 1, 1]))
    0.75
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


def _cut(module: nn.Module, rank: int, svd: Optional[tuple] = None) -> nn.Module:
    """The rank-``rank`` truncation of a layer as factors, per kind of layer (MATH.md sections 8 and 9)."""
    if isinstance(module, (nn.Conv2d, DoubleConv2d)):
        return DoubleConv2d.from_conv(module, rank, svd)
    return DoubleLinear.from_linear(module, rank, svd)


def _refusal(module: nn.Module) -> Optional[str]:
    """Why harmonic pruning cannot cut ``module`` (None when it can)."""
    if isinstance(module, nn.Conv2d) and module.groups != 1:
        return (f"a grouped convolution (groups = {module.groups}): its kernel is block-diagonal across groups, "
                f"which a DoubleConv2d cannot keep; harmonic pruning supports Conv2d with groups = 1 only")
    if layer_kind(module) == "linear" or isinstance(module, (DoubleConv2d, nn.Conv2d)):
        return None
    return (f"a {type(module).__name__}; harmonic pruning needs Linear or DoubleLinear layers, or Conv2d "
            f"(groups = 1) or DoubleConv2d layers")


def _svd(module: nn.Module) -> tuple:
    """``(u, s, vt)`` of a layer's ``W`` (``K_mat``): from the factors of a double layer, else dense (float64)."""
    if isinstance(module, (DoubleLinear, DoubleConv2d)):
        return module.svd()
    w = weight_of(module).cpu().double()
    return tuple(a.numpy() for a in torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False))


def numerical_rank(module: nn.Module) -> int:
    """``relusv.numerical_rank`` of ``W`` (a convolution's kernel matrix ``K_mat``, ``C_out x C_in kh kw``),
    at most a double layer's ``rank``."""
    from .. import numerical_rank as matrix_rank

    w = weight_of(module).detach().cpu()
    rank = matrix_rank(w.reshape(w.shape[0], -1).numpy())
    return min(rank, module.rank) if isinstance(module, (DoubleLinear, DoubleConv2d)) else rank


class _LoaderRetraining:
    """Retraining from a data loader: ``batches`` optimiser steps, cycling through the loader, the learning rate
    annealed to 0 on a cosine over the steps (``CosineAnnealingLR``), so every retraining ends settled."""

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
        raise InvalidInputError("the retraining data loader yields no batches")

    def __call__(self, model: nn.Module) -> None:
        # Layers are replaced between calls, so the optimiser is built afresh each time.
        optimizer = self.optimizer([p for p in model.parameters() if p.requires_grad])
        annealing = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.batches)
        device = model_device(model)
        modes = TrainingModes(model)
        try:
            model.train()
            for _ in range(self.batches):
                inputs, targets = self._next()[:2]
                optimizer.zero_grad()
                self.loss(forward(model, inputs, device), targets.to(device)).backward()
                optimizer.step()
                annealing.step()
        finally:
            modes.restore()
            for p in model.parameters():
                p.grad = None



@dataclass
class PruneResult:
    """The pruned model, its layer names, one history record per trial cut, and what the result guarantees.

    ``history[0]`` is the network as given (after the exact conversion to double layers); every later record is
    one trial cut with ``iteration``, ``layer`` (the layer cut), ``rank_tried``, ``ranks`` (one per entry of
    ``layers``, as measured in this trial), ``parameters`` and ``multiply_adds`` (cheaper form per layer,
    ``relusv.params``), ``selection_accuracy_before_retraining`` (right after the cut: what chose it),
    ``selection_accuracy``, ``accuracy_before_retraining`` and ``accuracy`` (the stopping set, before and after
    retraining), ``retrained``, ``retrainings`` (the retraining rounds it took: 1 plus the retries of
    ``patience``), ``accepted`` (False for a cut undone because it broke the floor) and ``test_accuracy`` when
    ``test_data`` is given (reported only, never used). With retraining and at least one kept cut, the last
    record is the final retraining (``layer`` and ``rank_tried`` None, the ranks unchanged; ``accepted`` False
    when it was undone because it broke the floor).

    ``model`` is stored in the cheaper form per layer, so ``parameters == sum(p.numel() for p in
    model.parameters())``.

    Attributes
    ----------
    model : nn.Module
    layers : list of str
    history : History
    initial_accuracy, floor : float
        Stopping-set accuracy at the start, and the floor every accepted cut kept.
    tolerance : float or None
    stop_reason, schedule : str
    selection_points, stopping_points : int
    retrained : bool

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import harmonic_prune
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> result = harmonic_prune(model, torch.randn(60, 4), torch.randint(0, 3, (60,)), progress=False)
    >>> result.layers
    ['0']
    >>> result.parameters == sum(p.numel() for p in result.model.parameters())
    True
    """

    model: nn.Module
    layers: List[str]
    history: History
    initial_accuracy: float
    stop_reason: str
    floor: float
    tolerance: Optional[float]
    selection_points: int
    stopping_points: int
    retrained: bool
    schedule: str

    @property
    def accepted(self) -> List[dict]:
        """The records of the kept states: the start and every accepted cut."""
        return [r for r in self.history if r["accepted"] in (True, "True")]

    @property
    def parameters(self) -> int:
        return self.accepted[-1]["parameters"]

    @property
    def retrainings(self) -> int:
        """Retraining rounds in all (every trial's, the retries and the final retraining)."""
        return sum(int(r.get("retrainings") or 0) for r in self.history)

    def guarantee(self) -> str:
        """What the result promises, on which set, and the test drop measured apart from every decision."""
        first, last = self.accepted[0], self.accepted[-1]
        bound = (f"within {100 * self.tolerance:g} pt of the start" if self.tolerance is not None
                 else f"at least {100 * self.floor:.2f}%")
        text = (f"accuracy {bound} on the stopping set ({self.stopping_points} points: "
                f"{100 * first['accuracy']:.2f}% -> {100 * last['accuracy']:.2f}%); selection set "
                f"({self.selection_points} points) {100 * first['selection_accuracy']:.2f}% -> "
                f"{100 * last['selection_accuracy']:.2f}%")
        if "test_accuracy" in first:
            text += f"; test drop {100 * (first['test_accuracy'] - last['test_accuracy']):.2f} pt"
        return text

    def __repr__(self) -> str:
        first, last = self.accepted[0], self.accepted[-1]
        ranks = dict(zip(self.layers, last.get("ranks", [])))
        trials = sum(r["layer"] not in (None, "") for r in self.history)
        return (f"PruneResult({trials} iterations ({self.retrainings} retrainings), stopped by "
                f"{self.stop_reason!r}; ranks {ranks}; parameters {first['parameters']:,} -> "
                f"{last['parameters']:,}; {self.guarantee()})")


def _subset(x: Any, y: Any, index: np.ndarray) -> Data:
    """Points ``index`` of ``(x, y)`` (tensors, arrays, or a dataset of pairs with ``y=None``)."""
    if y is None:
        return torch.utils.data.Subset(x, index.tolist()), None
    pick = torch.as_tensor(index) if isinstance(x, torch.Tensor) else index
    return x[pick], y[torch.as_tensor(index) if isinstance(y, torch.Tensor) else index]


def _checked_labels(model: nn.Module, x_val: Any, y_val: Any) -> Any:
    """``y_val`` checked as a whole by the one label check (``probe.class_targets``, the classes from the
    model's logits on the first point) before it is split, so that a message names the caller's position."""
    if y_val is None or not isinstance(x_val, (torch.Tensor, np.ndarray)) or len(x_val) == 0:
        return y_val
    modes = TrainingModes(model)
    try:
        model.eval()
        with torch.no_grad():
            output = forward(model, torch.as_tensor(x_val[:1]), model_device(model))
    finally:
        modes.restore()
    class_targets(torch.as_tensor(np.asarray(y_val)), output)
    return y_val


def _decision_sets(x_val: Any, y_val: Any, stop_data: Optional[Data], seed: int,
                   selection_fraction: float) -> Tuple[Data, Data]:
    """``(selection, stopping)``: ``(x_val, y_val)`` and ``stop_data``, or two seeded disjoint parts of
    ``(x_val, y_val)`` when ``stop_data`` is None, the first ``selection_fraction`` of the points."""
    if stop_data is not None:
        return (x_val, y_val), tuple(stop_data)
    if not hasattr(x_val, "__len__"):
        raise InvalidTypeError(f"x_val must support len() and indexing, got {type(x_val).__name__}")
    if y_val is not None and len(x_val) != len(y_val):
        raise InvalidInputError(f"x_val has {len(x_val)} points but y_val has {len(y_val)}")
    if len(x_val) < 2:
        raise InvalidInputError(f"x_val has {len(x_val)} points: at least 2 are needed (a selection set and a "
                                f"stopping set), or pass stop_data")
    selection, stopping = split_sets(len(x_val), seed, [selection_fraction, 1 - selection_fraction])
    return _subset(x_val, y_val, selection), _subset(x_val, y_val, stopping)


def _check_options(min_rank: int, retrain_batches: int, max_iterations: Optional[int], retrain: Any,
                   patience: int, final_retrainings: int, selection_fraction: float) -> None:
    for name, value, least in (("min_rank", min_rank, 1), ("retrain_batches", retrain_batches, 1),
                               ("max_iterations", max_iterations, 0), ("patience", patience, 0),
                               ("final_retrainings", final_retrainings, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}")
    if isinstance(selection_fraction, bool) or not isinstance(selection_fraction, (int, float)) \
            or not 0 < selection_fraction < 1:
        raise InvalidInputError(f"selection_fraction must lie in (0, 1), got {selection_fraction!r}")
    if retrain is True:
        raise InvalidInputError("retrain=True: pass the retraining itself (a data loader of (inputs, targets) "
                                "batches, or a callable retrain(model)), or retrain=False for one-shot pruning")


def _pruned_layers(target: nn.Module, layers: Optional[Iterable[str]]) -> List[str]:
    """The layers to prune (default: every weight layer whose output reaches a ReLU, directly or through a
    residual sum); a clear refusal for unsupported ones."""
    found = relu_layers(target, layers, "harmonic_prune", branches=True)
    names = []
    for layer in found:
        reason = _refusal(target.get_submodule(layer.name))
        if reason is not None:
            raise InvalidTypeError(f"harmonic_prune: layer {layer.name!r} is {reason}")
        names.append(layer.name)
    return names


def _to_double_layers(target: nn.Module, names: List[str]) -> Dict[str, int]:
    """Step 1: every pruned layer as a double layer at its numerical rank (exact up to rounding); the ranks."""
    ranks = {}
    for name in names:
        module = target.get_submodule(name)
        rank = max(numerical_rank(module), 1)
        if not isinstance(module, (DoubleLinear, DoubleConv2d)) or module.rank != rank:
            replace_module(target, name, _cut(module, rank))
        ranks[name] = rank
    return ranks


class _Pruning:
    """The state of one run: the model, the data sets, the floor, the schedule and the history."""

    def __init__(self, work: nn.Module, names: List[str], selection: Data, stopping: Data,
                 test_data: Optional[Data], batch_size: int, predict: Optional[Callable],
                 retrain: Optional[Callable], patience: int = 0):
        self.work, self.target, self.names = work, unwrap(work), names
        self.selection, self.stopping, self.test_data = selection, stopping, test_data
        self.batch_size, self.predict, self.retrain, self.patience = batch_size, predict, retrain, patience
        self.example = ProbeSet(*selection, 1).batch(0)[2]
        self.history = History()
        self._svds: Dict[str, tuple] = {}

    def svd(self, name: str) -> tuple:
        """``_svd`` of layer ``name``, kept while the layer is the same module with the same parameter values
        (their in-place version counters: a cut replaces the module, a retraining step or a restore bumps
        them), so that a trial recomputes only the SVDs of the layers that changed since the last."""
        module = self.target.get_submodule(name)
        versions = tuple(p._version for p in module.parameters())
        kept = self._svds.get(name)
        if kept is None or kept[0] is not module or kept[1] != versions:
            kept = self._svds[name] = (module, versions, _svd(module))
        return kept[2]

    def accuracy(self, data: Data) -> float:
        return accuracy(self.work, data[0], data[1], self.batch_size, self.predict)

    def record(self, ranks: Dict[str, int], **entry: Any) -> dict:
        counts = model_counts(self.target, self.example).cheaper
        entry.update(ranks=[ranks[n] for n in self.names], parameters=counts.parameters,
                     multiply_adds=counts.multiply_adds)
        if self.test_data is not None:
            entry["test_accuracy"] = self.accuracy(self.test_data)
        self.history.append(entry)
        return entry

    def accepted_parameters(self) -> int:
        return [r for r in self.history if r["accepted"]][-1]["parameters"]

    def candidates(self, schedule: Schedule) -> List[Tuple[float, float, str, int, nn.Module]]:
        """Step 2: each open layer cut to its proposed rank alone, measured on the selection set."""
        found = []
        for name in schedule.open():
            rank = schedule.proposal(name)
            original = self.target.get_submodule(name)
            svd = self.svd(name)
            candidate = _cut(original, rank, svd)
            replace_module(self.target, name, candidate)
            try:
                acc = self.accuracy(self.selection)
            finally:
                replace_module(self.target, name, original)
            sigma = svd[1]
            relative = float(sigma[rank] / sigma[0]) if sigma.size > rank and sigma[0] > 0 else 0.0
            found.append((acc, relative, name, rank, candidate))
        return found

    def retrained_accuracy(self, floor: float, rounds: int) -> Tuple[float, int]:
        """Step 3-4: retraining, then the stopping-set accuracy; below the floor, up to ``rounds - 1`` further
        retrainings while it stays there. The last accuracy and the rounds made."""
        made = 0
        while True:
            self.retrain(self.work)
            made += 1
            accuracy_now = self.accuracy(self.stopping)
            if accuracy_now >= floor or made >= rounds:
                return accuracy_now, made

    def trial(self, iteration: int, floor: float, schedule: Schedule) -> dict:
        """Steps 2-4: the least harmful cut, retraining (with patience), and the floor on the stopping set
        (undone below it)."""
        options = self.candidates(schedule)
        before, _, name, rank, candidate = options[choose_cut([(a, r) for a, r, *_ in options])]
        snapshot = copy.deepcopy(self.target) if self.retrain is not None else None
        original = self.target.get_submodule(name)
        replace_module(self.target, name, candidate)
        stop_before = self.accuracy(self.stopping)
        stop_after, rounds = (stop_before, 0) if self.retrain is None else \
            self.retrained_accuracy(floor, 1 + self.patience)
        accepted = stop_after >= floor
        ranks = dict(schedule.rank, **{name: rank})
        entry = self.record(ranks, iteration=iteration, layer=name, rank_tried=rank,
                            selection_accuracy_before_retraining=before,
                            selection_accuracy=self.accuracy(self.selection) if self.retrain is not None else before,
                            accuracy_before_retraining=stop_before, accuracy=stop_after,
                            retrained=self.retrain is not None, retrainings=rounds, accepted=accepted)
        if accepted:
            schedule.accept(name, rank)
        else:
            schedule.refuse(name, rank)
            if snapshot is None:
                replace_module(self.target, name, original)
            else:
                _restore(self.target, snapshot, self.names)
        return entry

    def final_retraining(self, iteration: int, floor: float, schedule: Schedule, rounds: int) -> dict:
        """Step 5: ``rounds`` retrainings of the pruned network, then the patience of a cut (further rounds while
        the stopping set is below the floor); undone when it stays below."""
        snapshot = copy.deepcopy(self.target)
        selection_before, stop_before = self.accuracy(self.selection), self.accuracy(self.stopping)
        for _ in range(rounds - 1):
            self.retrain(self.work)
        stop_after, last = self.retrained_accuracy(floor, 1 + self.patience)
        rounds += last - 1
        accepted = stop_after >= floor
        entry = self.record(schedule.rank, iteration=iteration, layer=None, rank_tried=None,
                            selection_accuracy_before_retraining=selection_before,
                            selection_accuracy=self.accuracy(self.selection), accuracy_before_retraining=stop_before,
                            accuracy=stop_after, retrained=True, retrainings=rounds, accepted=accepted)
        if not accepted:
            _restore(self.target, snapshot, self.names)
        return entry


def harmonic_prune(model: nn.Module, x_val: Any, y_val: Any = None, *, retrain: Optional[Retrain] = None,
                   retrain_batches: int = 50, optimizer: Optional[Callable] = None, loss: Optional[Callable] = None,
                   tolerance: float = 0.01, min_accuracy: Optional[float] = None, stop_data: Optional[Data] = None,
                   test_data: Optional[Data] = None, selection_fraction: float = 0.25, patience: int = 4,
                   final_retrainings: int = 10, schedule: str = "bisection", cut_fraction: float = 0.25,
                   max_parameters: Optional[int] = None, max_iterations: Optional[int] = None, min_rank: int = 1,
                   layers: Optional[Iterable[str]] = None, batch_size: int = 1024, inplace: bool = False,
                   predict: Optional[Callable] = None, seed: int = 0,
                   progress: ProgressOption = None) -> PruneResult:
    """Harmonic pruning (MATH.md section 8) of ``Linear`` / ``DoubleLinear`` / ``Conv2d`` / ``DoubleConv2d`` layers.

    The paper's algorithm: the layers become double layers, then repeatedly the ReLU-aware least useful singular
    directions are cut from one layer, the network is retrained briefly, and the cut is kept while the accuracy
    on a stopping set stays within ``tolerance`` of the start; a final longer retraining polishes the result
    (see the module docstring for the steps).

    Parameters
    ----------
    model : nn.Module
        Copied first unless ``inplace``.
    x_val, y_val
        Validation data (tensors, arrays, or a dataset of ``(input, target)`` pairs with ``y_val=None``). Without
        ``stop_data`` they are split into two seeded disjoint parts: the *selection* set (``selection_fraction``
        of the points) chooses every cut, the *stopping* set (the rest) decides whether a cut is kept. With
        ``stop_data`` all of them choose the cuts.
    retrain : data loader, callable or False, optional
        The paper's short retraining after every cut: an iterable of ``(inputs, targets)`` batches, of which
        ``retrain_batches`` are used per retraining with ``optimizer(params)`` (default Adam, lr 1e-3), its
        learning rate annealed to 0 on a cosine over those steps, and ``loss`` (default cross-entropy); or
        ``retrain(model)`` that trains the current model in place (one round; layers change between calls:
        build the optimiser inside). None or False: one-shot pruning, nothing retrained.
    retrain_batches : int, default 50
        Optimiser steps per retraining (the paper's 50 batches).
    tolerance : float, default 0.01
        A fraction of accuracy, not percentage points (``relusv report --tolerance`` takes points): a cut is
        kept while the stopping-set accuracy is at least the start minus ``tolerance`` (0.01 = one percentage
        point; 1 accepts any accuracy, leaving ``max_parameters`` as the only limit), so no default can take a
        model far below where it started.
    min_accuracy : float, optional
        An explicit floor instead of ``tolerance``; it must not exceed the starting stopping-set accuracy.
    stop_data : (x_stop, y_stop), optional
        The stopping set; disjoint from ``x_val`` is the caller's promise.
    test_data : (x_test, y_test), optional
        Only reported (``test_accuracy`` in every record, the test drop in ``guarantee()``), never used.
    selection_fraction : float in (0, 1), default 0.25
        Without ``stop_data``: the part of ``x_val`` that chooses the cuts. Choosing among one candidate per
        layer needs few points; the decision to keep a cut compares accuracies one tolerance apart, so the
        stopping set gets the larger part (its sampling spread is what makes a decision a coin flip).
    patience : int, default 4
        With retraining: a cut whose stopping-set accuracy is below the floor after its retraining is retrained
        again, up to ``patience`` more rounds, and refused only if it is still below the floor (every round and
        its measurement is in the ``retrainings`` of the record). 0 refuses at the first measurement.
    final_retrainings : int, default 10
        With retraining and at least one kept cut: retraining rounds of the final network (the last record),
        then up to ``patience`` more while the stopping set is below the floor; undone if it stays below. 0: none.
    schedule : {"bisection", "single"}, default "bisection"
        ``"bisection"``: each layer's next trial cuts ``max(1, floor(cut_fraction * w))`` ranks, ``w`` the width
        of the interval between its accepted rank and the largest rank refused, so every trial shrinks that
        interval by a constant factor: ``O(log r_l)`` cuts and retrainings per layer
        (``relusv.pruning_rules.worst_trials``; 16 for rank 100, 22 for rank 512 at the default fraction);
        ``"single"``: one rank per cut as in the paper (``sum_l (r_l - min_rank)`` at most).
    cut_fraction : float in (0, 1/2], default 0.25
        The bisection's step: 1/2 is plain bisection (fewest trials, at most ``ceil(log2 w)``); smaller
        fractions cut more gently before each short retraining, which retraining recovers from more often.
    max_parameters : int, optional
        Stop once the model (cheaper form per layer) has at most this many parameters.
    max_iterations : int, optional
        At most this many trial cuts.
    min_rank : int, default 1
        No layer is cut below this rank.
    layers : list of str, optional
        Qualified names of the layers to prune; default every weight layer whose output feeds a ReLU or
        reaches one through a residual sum (a ResNet block's second convolution and downsample, MATH.md
        section 10; ``relusv.torch.discover``): the hidden layers, not the classifier. Grouped convolutions
        are refused.
    seed : int, default 0
        Seed of the selection / stopping split.
    progress : bool, callable or None
        A progress bar (``relusv.ProgressOption``); a callable ``f(done, total)`` may return True to stop.

    Returns
    -------
    PruneResult
        ``result.model`` stored in the cheaper form per layer (``relusv.params.store_cheaper``): double layers
        at or above break-even rank become dense again, so ``result.parameters`` is ``sum(p.numel())``.

    Raises
    ------
    InvalidInputError
        Bad options, too few validation points, or ``min_accuracy`` above the starting accuracy.
    InvalidTypeError
        A named layer that cannot be pruned (e.g. a grouped convolution).

    Examples
    --------
    >>> result = harmonic_prune(model, x_val, y_val, retrain=train_loader, test_data=(x_test, y_test))
    ... # doctest: +SKIP
    >>> print(result.guarantee())  # doctest: +SKIP
    """
    _check_options(min_rank, retrain_batches, max_iterations, retrain, patience, final_retrainings,
                   selection_fraction)
    x_val, y_val = _arrays.loader_points(x_val, y_val)  # a DataLoader is read once, not at every cut
    selection, stopping = _decision_sets(x_val, _checked_labels(unwrap(model), x_val, y_val), stop_data, seed,
                                         selection_fraction)
    work = model if inplace else copy.deepcopy(model)
    target = unwrap(work)
    names = _pruned_layers(target, layers)
    if retrain is not None and retrain is not False and not callable(retrain):
        retrain = _LoaderRetraining(retrain, retrain_batches, optimizer, loss)
    run = _Pruning(work, names, selection, stopping, test_data, batch_size, predict, retrain or None, patience)
    start = run.accuracy(stopping)
    floor = accuracy_floor(start, tolerance, min_accuracy)
    plan = Schedule(_to_double_layers(target, names), min_rank, schedule, cut_fraction)
    run.record(plan.rank, iteration=0, layer=None, rank_tried=None, selection_accuracy_before_retraining=None,
               selection_accuracy=run.accuracy(selection), accuracy_before_retraining=start, accuracy=start,
               retrained=False, retrainings=0, accepted=True)
    stop_reason = _loop(run, plan, floor, max_parameters, max_iterations, progress)
    if _polishes(run, stop_reason, final_retrainings):
        run.final_retraining(len(run.history), floor, plan, final_retrainings)
    store_cheaper(target)
    return PruneResult(work, names, run.history, start, stop_reason, floor,
                       None if min_accuracy is not None else float(tolerance), _points(selection),
                       _points(stopping), run.retrain is not None, schedule)


def _polishes(run: _Pruning, stop_reason: str, final_retrainings: int) -> bool:
    """Whether step 5 runs: with retraining, rounds asked for, at least one kept cut, and not cancelled."""
    kept_cuts = len(run.history.select(accepted=True)) - 1
    return run.retrain is not None and final_retrainings > 0 and kept_cuts > 0 and stop_reason != "cancelled"


def _points(data: Data) -> int:
    return len(data[0])


def _loop(run: _Pruning, plan: Schedule, floor: float, max_parameters: Optional[int],
          max_iterations: Optional[int], progress: ProgressOption) -> str:
    """Trial cuts until the schedule is done or a stop criterion holds; the stop reason."""
    total = plan.trial_bound()
    bar = Progress("harmonic pruning", total, progress)
    iteration = 0
    try:
        while True:
            if max_parameters is not None and run.accepted_parameters() <= max_parameters:
                return "parameter budget"
            if max_iterations is not None and iteration >= max_iterations:
                return "max_iterations"
            if not plan.open():
                return "every layer at its lowest accepted rank"
            iteration += 1
            run.trial(iteration, floor, plan)
            if bar.update_to(min(iteration, total)):  # a callable progress asked to cancel
                return "cancelled"
    finally:
        bar.close()


def _restore(target: nn.Module, snapshot: nn.Module, names: List[str]) -> None:
    """Puts the snapshot's layers and parameter values back into ``target`` (same objects kept elsewhere)."""
    for name in names:
        replace_module(target, name, copy.deepcopy(snapshot.get_submodule(name)))
    target.load_state_dict(snapshot.state_dict())
