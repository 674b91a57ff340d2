"""Watching the layers of a network during training (MATH.md sections 4 and 6).

A ``Monitor`` runs a fixed probe set ``(X, y)`` through the model, splits the
points into correctly and incorrectly classified ones, and records per layer:

- the Gaussian mean width of each group's activations, on equal-size seeded
  subsets of the two groups (``repeats`` subsamples: mean and spread), for the
  layer's input and for the output of its ReLU, and the calibrated comparison
  of the two groups (MATH.md section 11; ``relusv.analysis.compare``, the
  same design, directions and numbers as ``relusv.torch.analyze``): the mean
  paired difference, its permutation p-value, the effect with its bootstrap
  interval, Holm-adjusted over the measurement's comparisons, and the verdict;
- the singular values of the layer's weight ``W``;
- optionally, the top of the ReLU singular-value bound curve of the layer
  ``ReLU(W x + b)`` over each group's inputs (``relusv.relu_singular_values``).

One measurement is one pass over the probe set under ``torch.no_grad()``
where the products of all probe points with the Gaussian directions fit in
``ONE_PASS_BYTES`` (``S`` numbers per point and site; the comparison needs
only maxima and minima of these): the pass classifies every point and forms
the products batch by batch, and the pooled points' rows are taken once the
groups are known. Otherwise (a large probe set, or ReLU bounds, which keep the
inputs of the first subsamples) it is two passes: the first classifies, the
second streams the activations of the pooled points (at most
``max_group_size`` per group) into their products. Either way the probe set
never has to be in memory at once (``X`` may be a NumPy memmap or a
map-style dataset), and the numbers are the same. Activations on a GPU are
copied to the CPU batch by batch for the native library; the model stays
where it is. A layer's input that equals the previous layer's ReLU output on
every probe batch (the usual MLP; checked in the first pass) is measured once
and recorded under both names.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .. import _arrays
from ..analysis.compare import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_REPEATS,
    GROUPS,
    Comparison,
    Design,
    adjust,
    compare,
    design,
    for_family,
    gmw_functional,
    projections,
    resolution_note,
    spread,
)
from ..analysis.directions import gaussian_directions
from ..errors import InvalidInputError, InvalidTypeError
from ..width import DEFAULT_SAMPLES, DEFAULT_TRIM
from ._layers import TrainingModes, forward, model_device, predicted_labels, unwrap
from ._threads import one_torch_thread
from .discovery import Layer, relu_layers
from .distributed import SingleProcess, communicator
from .history import History
from .probe import ProbeSet, class_targets

SITES = ("input", "output")


@dataclass(frozen=True)
class Tap:
    """One measured activation: a layer's input, or the output of its ReLU."""

    layer: Layer
    site: str

    @property
    def key(self) -> Tuple[str, str]:
        return (self.layer.name, self.site)


_DTYPE_CODES = {32: "float32", 64: "float64"}
ONE_PASS_BYTES = 1 << 27   # products of all probe points kept in pass 1 up to this size


class Monitor:
    """Per-layer widths and spectra of correctly vs incorrectly classified probe points.

    Two lines attach it to a training script::

        monitor = relusv.torch.Monitor(model, x_probe, y_probe, every_epochs=1)
        ...  # at the end of every epoch:
        monitor.epoch_end()

    and ``monitor.history`` is a list of flat records (``to_csv`` / ``to_json``;
    ``relusv.plot`` draws them).

    Parameters
    ----------
    model : nn.Module
        Plain, ``DataParallel`` or ``DistributedDataParallel`` (the probe runs
        through the wrapped module, so no collective of the wrapper is triggered).
    x, y : probe inputs and class targets
        Tensors, NumPy arrays or memmaps sliced in batches; or ``x`` a map-style
        dataset of ``(input, target)`` pairs and ``y=None``. Under
        ``torch.distributed`` every rank passes the same full probe set.
    layers : list of str, optional
        Qualified names (``model.named_modules()``) of the modules to watch.
        Default: every ``Linear`` / ``DoubleLinear`` / ``Conv2d`` whose output
        feeds a ReLU or leaky ReLU, module or function (``relusv.torch.discover``:
        found by tracing, BatchNorm in between folded). For each watched weight
        layer the monitor measures its input and the output of its activation
        (computed from the module's output, so shared ReLU modules are fine);
        for any other named module, its output. Records name layers by their
        qualified names.
    every_steps, every_epochs : int, optional
        Measure on every N-th call of ``step()`` / ``epoch_end()``.
    group_size, max_group_size : int, optional
        Each group enters with at most ``max_group_size`` of its points (a
        seeded random subset; None: all); the compared sets have the size of
        the smaller, at most ``group_size`` (the rule of ``analyze``).
    repeats : int, default 5
        Subsample pairs per comparison (a group of exactly the compared size
        is used whole in every repeat). ``subsets`` is its former name.
    permutations, bootstrap, alpha
        The calibrated comparison (MATH.md section 11), as in ``analyze``:
        relabellings of the pooled points, bootstrap resamples, level. The
        default ``permutations=None`` draws as many relabellings as a
        measurement's Holm family of ``m`` comparisons (one per measured
        activation) needs for a verdict to be attainable
        (``relusv.analysis.compare.permutations_for(m, alpha)``, at least 500),
        in two stages as ``analyze`` does; an integer fixes the count.
    samples, trim : GMW estimator settings (as ``relusv.gmw``).
    seed : int, default 0
        Seed of the Gaussian directions (those of ``relusv.gmw(..., seed=seed)``,
        the same for both groups and every subsample: paired) and, through
        ``numpy.random.SeedSequence``, of the pools, subsamples, relabellings
        and bootstrap resamples.
    singular_values : bool, default True
        Record ``relusv.singular_values(W)`` of every linear-like layer (a
        convolution's kernel matrix) and its ``operator_norm``, the norm of the
        layer as a map of its input, with ``operator_norm_lower``, the ``note``
        naming the method and the bracket's gap (MATH.md section 9; as the
        columns of ``relusv.torch.analyze``: a convolution's over the probe's
        image size, exact where cheap, else a certified bracket
        ``operator_norm_lower <= ||A|| <= operator_norm``, warm-started from
        the previous measurement's vector). Both are computed anew only when
        the layer's ``W`` (BatchNorm folded) or input size changed since the
        last measurement (frozen layers cost a comparison; the monitor keeps a
        copy of each watched ``W``).
    relu_bounds : bool, default False
        Record upper bounds of the first ReLU singular values of every
        ``Linear`` / ``DoubleLinear`` layer with a ReLU (BatchNorm folded), over
        the inputs of the first subsample of each group
        (``relusv.relu_singular_values(W, b, X, ks)``). Convolutions get
        their spectra and widths, not ReLU bounds (use ``analyze``).
    relu_ks : sequence of int, default (0, 1, 2, 3)
    relu_options : dict, optional
        Extra keyword arguments of ``relu_singular_values`` (``max_steps``,
        ``time_budget``, ``threads``, ...).
    batch_size : int, default 1024
        Probe batch size. Also the unit in which the probe set is split across
        ranks, so results do not depend on the number of processes.
    eval_mode : bool, default True
        Put the model in eval mode during the probe passes; every module's
        ``training`` flag is restored afterwards. The CPU random generator is
        restored too, so measuring never changes the training run.
    predict : callable, optional
        ``predict(output) -> labels``; default argmax of the logits.
    dtype : {"float32", "float64"}, optional
        Precision the activations are rounded to before their products with
        the directions (formed in float64); default that of the activations.
    distributed : bool, optional
        Default: on when ``torch.distributed`` is initialised with several ranks.
        Ranks classify and stream disjoint probe batches (batch ``j`` on rank
        ``j mod world``) and all-reduce the results (MAX / MIN of the running
        extremes, SUM of counts); every rank ends with the single-process history.
    process_group : optional ``torch.distributed`` group (default: the world).

    Returns
    -------
    Monitor
        ``step()`` / ``epoch_end()`` measure on schedule (``measure()`` at once)
        and return the new records; ``history`` holds them all, ``last`` the
        latest ``Measurement``.

    Raises
    ------
    InvalidTypeError
        ``model`` is not a ``torch.nn.Module``; probe inputs without ``len()`` and indexing.
    InvalidInputError
        ``every_steps``, ``every_epochs``, ``repeats`` or ``samples`` not a
        positive integer, an unknown ``dtype``, an empty probe set or inputs and
        targets of different lengths; when measuring, ``predict`` returning the
        wrong number of labels.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import Monitor
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    >>> monitor = Monitor(model, x, y, every_epochs=1, samples=50, repeats=2)
    >>> records = monitor.epoch_end()
    >>> sorted({r["layer"] for r in monitor.history if r["layer"]})
    ['0']
    """

    def __init__(self, model: nn.Module, x: Any, y: Any = None, *, layers: Optional[Iterable[str]] = None,
                 every_steps: Optional[int] = None, every_epochs: Optional[int] = None,
                 group_size: Optional[int] = None, max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE,
                 repeats: int = DEFAULT_REPEATS, permutations: Optional[int] = None,
                 bootstrap: int = DEFAULT_BOOTSTRAP, alpha: float = DEFAULT_ALPHA, samples: int = DEFAULT_SAMPLES,
                 trim: float = DEFAULT_TRIM, seed: int = 0, singular_values: bool = True,
                 relu_bounds: bool = False, relu_ks: Sequence[int] = (0, 1, 2, 3),
                 relu_options: Optional[Dict[str, Any]] = None, batch_size: int = 1024, eval_mode: bool = True,
                 predict: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, dtype: Optional[str] = None,
                 distributed: Optional[bool] = None, process_group: Any = None, subsets: Optional[int] = None):
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if subsets is not None:
            warnings.warn("Monitor(subsets=...) is now called repeats=", DeprecationWarning, stacklevel=2)
            repeats = subsets
        for name, value in (("every_steps", every_steps), ("every_epochs", every_epochs), ("repeats", repeats),
                            ("samples", samples)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if dtype is not None and str(np.dtype(dtype)) not in _DTYPE_CODES.values():
            raise InvalidInputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.model = model
        self.probe = ProbeSet(*_arrays.loader_points(x, y), batch_size)  # a DataLoader is read once
        _arrays.require_floating_inputs(self.probe.x, model)
        self.layers = relu_layers(unwrap(model), layers, "Monitor")
        self.taps = [Tap(layer, site) for layer in self.layers for site in SITES
                     if site == "output" or layer.weighted]
        self.every_steps, self.every_epochs = every_steps, every_epochs
        self.group_size, self.repeats, self.samples, self.trim, self.seed = group_size, repeats, samples, trim, seed
        self.design_settings = {"repeats": repeats, "permutations": permutations, "bootstrap": bootstrap,
                                "group_size": group_size, "max_group_size": max_group_size, "alpha": alpha,
                                "seed": seed}
        design([True, False], **self.design_settings)   # checks the settings now, not at the first measurement
        self._directions: Dict[int, np.ndarray] = {}
        self.singular_values, self.relu_bounds = singular_values, relu_bounds
        self.relu_ks = [int(k) for k in relu_ks]
        self.relu_options = dict(relu_options or {})
        self.eval_mode, self.predict = eval_mode, predict or predicted_labels
        self.dtype = None if dtype is None else str(np.dtype(dtype))
        self.distributed, self.process_group = distributed, process_group
        self.history = History()
        self.steps = 0
        self.epochs = 0
        self.measurements = 0
        self.last: Optional[Measurement] = None
        self._operator_starts: Dict[str, np.ndarray] = {}   # per layer: the last bracket's lower-end vector
        self._spectra_cache: Dict[str, tuple] = {}   # per layer: (W, input size, singular values, norm columns)

    # -- triggers ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        schedule = (f"every {self.every_steps} steps" if self.every_steps else
                    f"every {self.every_epochs} epochs" if self.every_epochs else "measure() only")
        return (f"Monitor({len(self.layers)} layers [{', '.join(layer.name for layer in self.layers)}], "
                f"{len(self.probe)} probe points, {schedule}, {self.measurements} measurements, "
                f"{len(self.history)} records)")

    def step(self) -> Optional[History]:
        """Counts a training step; measures when ``every_steps`` divides the count.

        Without ``every_steps`` nothing is measured, and the first call warns so.
        """
        self.steps += 1
        if not self.every_steps and self.steps == 1:
            warnings.warn("Monitor.step() counts steps but measures nothing: the monitor was made without "
                          "every_steps (pass every_steps=N, or call epoch_end() with every_epochs, or measure())",
                          stacklevel=2)
        if self.every_steps and self.steps % self.every_steps == 0:
            return self.measure()
        return None

    def epoch_end(self) -> Optional[History]:
        """Counts an epoch; measures when ``every_epochs`` divides the count.

        Without ``every_epochs`` nothing is measured, and the first call warns so.
        """
        self.epochs += 1
        if not self.every_epochs and self.epochs == 1:
            warnings.warn("Monitor.epoch_end() counts epochs but measures nothing: the monitor was made without "
                          "every_epochs (pass every_epochs=N, or call step() with every_steps, or measure())",
                          stacklevel=2)
        if self.every_epochs and self.epochs % self.every_epochs == 0:
            return self.measure()
        return None

    # -- one measurement ---------------------------------------------------------------------------

    def measure(self, step: Optional[int] = None, epoch: Optional[int] = None) -> History:
        """Measures now; appends the records to ``history`` and returns them.

        ``step`` / ``epoch`` default to the counts of ``step()`` / ``epoch_end()`` calls.
        """
        comm = communicator(self.distributed, self.process_group)
        comm.agree({"probe points": len(self.probe), "batch size": self.probe.batch_size, "taps": len(self.taps)})
        model = unwrap(self.model)
        modes = TrainingModes(model)
        try:
            if self.eval_mode:
                model.eval()
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                first = self._classify(model, comm, project=self._one_pass())
                correct, dims, dtype, aliases, input_shapes = first.summary()
                plan = for_family(design(correct, **self.design_settings), len(self.taps))
                if first.projected is not None:
                    projected, inputs = first.pooled(plan, aliases), {}
                else:
                    projected, inputs = self._stream(model, comm, plan, dims, dtype, aliases)
        finally:
            modes.restore()
        comparisons = self._compare(plan, projected, aliases)
        widths = {(*key, g): (c.correct_values if g == "correct" else c.incorrect_values)
                  for key, c in comparisons.items() for g in GROUPS}
        measurement = Measurement(self.measurements, self.steps if step is None else step,
                                  self.epochs if epoch is None else epoch, correct, plan.subsets(), widths,
                                  comparisons, plan)
        records = self._records(measurement)
        records += self._spectra(measurement, inputs, comm, input_shapes)
        self.measurements += 1
        self.last = measurement
        self.history.extend(records)
        return records

    def _hooks(self, model: nn.Module, sink: Callable[[Tap, torch.Tensor], None]) -> List[Any]:
        handles = []
        by_module: Dict[nn.Module, List[Tap]] = {}
        for tap in self.taps:
            by_module.setdefault(tap.layer.module, []).append(tap)
        for module, taps in by_module.items():
            def hook(_module, inputs, output, taps=taps):
                for tap in taps:
                    if tap.site == "input":
                        sink(tap, inputs[0])
                    else:
                        sink(tap, tap.layer.activate(output))
            handles.append(module.register_forward_hook(hook))
        return handles

    def _previous_outputs(self) -> List[int]:
        """For each input tap, the index of the output tap just before it (-1 if none)."""
        previous, last_output = [], -1
        for i, tap in enumerate(self.taps):
            previous.append(last_output if tap.site == "input" else -1)
            if tap.site == "output":
                last_output = i
        return previous

    def _one_pass(self) -> bool:
        """Whether pass 1 also forms the products of every probe point with the directions (then no pass 2).

        It does when no ReLU-bound inputs are kept and the products of all
        points fit in ``ONE_PASS_BYTES`` (they are ``samples`` float64 numbers
        per point and tap; the pool is a subset, chosen after classification).
        """
        if self.relu_bounds and self.relu_ks:
            return False
        return len(self.probe) * self.samples * len(self.taps) * 8 <= ONE_PASS_BYTES

    def _classify(self, model: nn.Module, comm: SingleProcess, project: bool = False) -> _FirstPass:
        """Pass 1: which probe points are classified correctly, the width of every tap, and aliases.

        A layer's input that equals the previous layer's ReLU output on every
        probe batch (the usual MLP) is an *alias*: its widths are that tap's,
        computed once. With ``project``, every point's products with the
        directions are formed here as well (in ``dtype``, else the activation's
        own precision; ``_FirstPass.reduce`` drops them if the taps' precisions
        differ, and pass 2 then streams as usual).
        """
        previous = self._previous_outputs()
        state = _FirstPass(self.taps, previous, len(self.probe), self.samples)
        verdict = state.verdict
        index = {tap.key: i for i, tap in enumerate(self.taps)}
        captured: Dict[int, torch.Tensor] = {}
        if project:
            state.projected = {}

        def sink(tap: Tap, activation: torch.Tensor) -> None:
            i = index[tap.key]
            state.dims[i] = int(np.prod(activation.shape[1:]))
            if tap.site == "input" and activation.dim() == 4:
                state.shapes[i] = activation.shape[1:]
            state.tap_bits[i] = max(state.tap_bits[i], 64 if activation.dtype == torch.float64 else 32)
            captured[i] = activation.reshape(activation.shape[0], -1)   # widths see flattened points

        device = model_device(model)
        handles = self._hooks(model, sink)
        try:
            for j in comm.shard(self.probe.batches):
                a, b, inputs, targets = self.probe.batch(j)
                captured.clear()
                output = forward(model, inputs, device)
                for i, p in enumerate(previous):
                    if state.same[i] and not (i in captured and p in captured and captured[i].shape == captured[p].shape
                                              and torch.equal(captured[i], captured[p])):
                        state.same[i] = 0
                if project:
                    self._project_batch(state, captured, a, b)
                labels = torch.as_tensor(self.predict(output)).reshape(-1).cpu()
                if labels.shape[0] != b - a:
                    raise InvalidInputError(f"predict returned {labels.shape[0]} labels for a batch of {b - a} points")
                verdict[a:b] = np.where((labels == class_targets(targets, output).to(labels.dtype)).numpy(), 2, 1)
        finally:
            for h in handles:
                h.remove()
            captured.clear()
        state.reduce(comm, self.dtype)
        return state

    def _project_batch(self, state: _FirstPass, captured: Dict[int, torch.Tensor], a: int, b: int) -> None:
        """Pass 1's products of batch ``[a, b)`` with every tap's directions.

        A tap still equal to its previous output tap borrows that tap's rows
        later (``_FirstPass.pooled``): the same points give the same products.
        """
        for i, activation in captured.items():
            if state.same[i] and state.previous[i] in captured:
                state.borrowed.setdefault(i, []).append((a, b))
                continue
            dtype = self.dtype or _DTYPE_CODES[int(state.tap_bits[i])]
            x = _arrays.as_points(activation, f"activation of {self.taps[i].layer.name}", dtype)
            if i not in state.projected:
                state.projected[i] = np.zeros((state.verdict.size, self.samples))
            state.projected[i][a:b] = projections(x, self.directions(int(state.dims[i])))

    def directions(self, dimension: int) -> np.ndarray:
        """The ``samples x dimension`` Gaussian directions of seed ``seed`` (those of ``relusv.gmw``), cached."""
        if dimension not in self._directions:
            self._directions[dimension] = gaussian_directions(dimension, self.samples, self.seed)
        return self._directions[dimension]

    def _stream(self, model: nn.Module, comm: SingleProcess, plan: Design, dims: np.ndarray, dtype: str,
                aliases: Dict[int, int]):
        """Pass 2: the products ``Z G^T`` of the pooled points with each tap's directions (pool order), and the
        inputs of repeat 0's sets (for the ReLU bounds)."""
        n = len(self.probe)
        position = np.full(n, -1, dtype=np.int64)
        position[plan.pool] = np.arange(plan.pool.size)
        first = {g: np.zeros(n, dtype=bool) for g in GROUPS}
        if plan.comparable:
            for g, idx in plan.pair(0).items():
                first[g][idx] = True
        measured = [i for i in range(len(self.taps)) if i not in aliases]
        projected = {i: np.zeros((plan.pool.size, self.samples)) for i in measured} if plan.comparable else {}
        # Where each tap's rows are kept as inputs of a layer (for the ReLU bounds): its own input,
        # or the input of the layer whose input it is an alias of.
        index = {tap.key: i for i, tap in enumerate(self.taps)}
        input_of: Dict[int, List[str]] = {}
        for i, tap in enumerate(self.taps):
            if tap.site == "input":
                input_of.setdefault(aliases.get(i, i), []).append(tap.layer.name)
        inputs: Dict[Tuple[str, str], List[Tuple[np.ndarray, np.ndarray]]] = {}
        want_inputs = self.relu_bounds and bool(self.relu_ks)
        batch: Dict[str, Any] = {}

        def sink(tap: Tap, activation: torch.Tensor) -> None:
            i = index[tap.key]
            if i in aliases:
                return
            # GPU tensors come to the CPU here, one batch at a time.
            x = _arrays.as_points(activation, f"activation of {tap.layer.name}", dtype)
            rows = batch["rows"]
            projected[i][position[batch["start"] + rows]] = projections(x[rows], self.directions(int(dims[i])))
            if want_inputs:
                for g in GROUPS:
                    keep = rows[first[g][batch["start"] + rows]]
                    for layer in input_of.get(i, ()):
                        inputs.setdefault((layer, g), []).append((batch["start"] + keep, x[keep].copy()))

        device = model_device(model)
        if projected:
            handles = self._hooks(model, sink)
            try:
                for j in comm.shard(self.probe.batches):
                    a = j * self.probe.batch_size
                    b = min(n, a + self.probe.batch_size)
                    batch["rows"], batch["start"] = np.flatnonzero(position[a:b] >= 0), a
                    if not batch["rows"].size:
                        continue   # no pooled point in this batch
                    _, _, batch_inputs, _ = self.probe.batch(j)
                    forward(model, batch_inputs, device)
            finally:
                for h in handles:
                    h.remove()
        if comm.world_size > 1 and projected:   # each pooled row was filled by exactly one rank
            stacked = comm.all_reduce(np.stack([projected[i] for i in measured]), "sum")
            projected = {i: stacked[k] for k, i in enumerate(measured)}
        return projected, inputs

    def _compare(self, plan: Design, projected: Dict[int, np.ndarray],
                 aliases: Dict[int, int]) -> Dict[Tuple[str, str], Comparison]:
        """The comparison of every tap (an alias shares its source's), Holm-adjusted over the measurement."""
        if not plan.comparable:
            return {}
        out: Dict[Tuple[str, str], Comparison] = {}
        for i, tap in enumerate(self.taps):
            if i in aliases:
                continue
            out[tap.key] = compare(plan, gmw_functional(None, self.samples, self.trim, self.seed,
                                                        projected=projected[i]))
        for i, source in aliases.items():
            c = out[self.taps[source].key]
            out[self.taps[i].key] = Comparison(**{**c.__dict__})
        family = [out[tap.key] for tap in self.taps]
        adjust(family, plan.alpha)
        note = resolution_note(int(plan.settings["permutations"]), len(family), plan.alpha)
        if note:
            warnings.warn(note, stacklevel=3)
        return out

    # -- records ------------------------------------------------------------------------------------

    def _base(self, m: Measurement) -> Dict[str, Any]:
        n_correct = int(m.correct.sum())
        return {"measurement": m.index, "step": m.step, "epoch": m.epoch,
                "accuracy": n_correct / m.correct.size, "correct": n_correct,
                "incorrect": int(m.correct.size - n_correct)}

    def _record(self, m: Measurement, layer: str, site: Optional[str], group: Optional[str], quantity: str,
                k: Optional[int], value: float, spread: Optional[float] = None) -> Dict[str, Any]:
        size = len(m.subsets[group][0]) if group and m.subsets[group] else 0
        return {**self._base(m), "layer": layer, "site": site, "group": group, "quantity": quantity, "k": k,
                "value": float(value), "spread": None if spread is None else float(spread),
                "group_size": size if group else None,
                "repeats": len(m.subsets[group]) if group else None}

    def _records(self, m: Measurement) -> History:
        out = History()
        for tap in self.taps:
            for g in GROUPS:
                values = m.widths.get((*tap.key, g))
                if values is None:   # a group too small to have a width: the record says why
                    record = self._record(m, tap.layer.name, tap.site, g, "gmw", None, float("nan"))
                    record["note"] = m.design.reason
                    out.append(record)
                    continue
                out.append(self._record(m, tap.layer.name, tap.site, g, "gmw", None, float(np.mean(values)),
                                        spread(values)))
            c = m.comparisons.get(tap.key)
            if c is not None:   # the comparison (MATH.md section 11): value D, and its statistics
                record = self._record(m, tap.layer.name, tap.site, None, "gmw_difference", None, c.difference)
                record.update({"effect": c.effect, "effect_low": c.effect_low, "effect_high": c.effect_high,
                               "p_value": c.p_value, "p_adjusted": c.p_adjusted, "verdict": c.verdict})
                out.append(record)
        return out

    def _spectra(self, m: Measurement, inputs: Dict, comm: SingleProcess, input_shapes: Dict[str, tuple]) -> History:
        out = History()
        weighted = [layer for layer in self.layers if layer.weighted]
        if self.singular_values:
            for layer, (sigma, norm) in zip(weighted, self._layer_spectra(weighted, input_shapes)):
                out.extend(self._record(m, layer.name, None, None, "singular_value", k, s) for k, s in enumerate(sigma))
                for quantity in ("operator_norm", "operator_norm_lower"):
                    record = self._record(m, layer.name, None, None, quantity, None, norm[quantity])
                    record["note"] = norm["operator_norm_method"]
                    out.append(record)
        if self.relu_bounds and self.relu_ks:
            bounds = self._relu_bounds(m, [layer for layer in weighted if layer.kind == "linear"], inputs, comm)
            for (name, g), spectrum in bounds.items():
                for k, bound, truncation in zip(spectrum["ks"], spectrum["bound"], spectrum["truncation_bound"]):
                    out.append(self._record(m, name, "input", g, "relu_bound", int(k), bound))
                    out.append(self._record(m, name, "input", g, "relu_truncation_bound", int(k), truncation))
        return out

    def _layer_spectra(self, layers: List[Layer], input_shapes: Dict[str, tuple]
                       ) -> List[Tuple[np.ndarray, Dict[str, Any]]]:
        """Per layer ``(singular values of W, operator-norm columns)``, computed anew only when ``W`` (BatchNorm
        folded) or the input size changed since the last measurement: a frozen layer costs a comparison.

        The singular values (native, one OpenBLAS thread, the GIL released) run on a worker thread while
        this one computes the convolutions' operator norms on one thread (``one_torch_thread``): the two
        share no state, each keeps to one core, and each result is what it would be alone.
        """
        from .. import singular_values
        from .._workers import NativeWorkers

        todo, out = [], []
        for layer in layers:
            w = _arrays.to_numpy(layer.matrix(), "W")   # bfloat16 too
            shape = input_shapes.get(layer.name)
            cached = self._spectra_cache.get(layer.name)
            if cached is not None and cached[1] == shape and np.array_equal(cached[0], w):
                out.append(cached[2:])
            else:
                todo.append((layer, w, shape))
                out.append(None)
        # On Ctrl-C or an error, the layers not started yet are dropped, not computed first (NativeWorkers).
        with NativeWorkers(1) as worker, one_torch_thread():
            spectra = [worker.submit(singular_values, w) for _, w, _ in todo]
            # A linear layer's norm is its sigma_0; a convolution's does not need the spectrum.
            norms = [self._operator_norm(layer, float(spectrum.result()[0]) if layer.kind == "linear" else None,
                                         shape) for (layer, _, shape), spectrum in zip(todo, spectra)]
            sigmas = [spectrum.result() for spectrum in spectra]
        computed = iter(zip(todo, sigmas, norms))
        for i, value in enumerate(out):
            if value is None:
                (layer, w, shape), sigma, norm = next(computed)
                self._spectra_cache[layer.name] = (w.copy(), shape, sigma, norm)
                out[i] = (sigma, norm)
        return out

    def _operator_norm(self, layer: Layer, sigma_0: Optional[float], input_shape) -> Dict[str, Any]:
        """The layer's norm as a map of its input (a convolution's on the probe's image size): the columns
        ``operator_norm`` (certified upper end), ``operator_norm_lower`` and ``operator_norm_method`` (the
        method and the gap, which becomes the records' ``note``).

        A bracket's iteration starts from the vector that attained the lower end at the previous
        measurement (the weights change little in between), so it usually needs a few steps only.
        """
        from ..layer_table import operator_norm
        from .analysis import layer_input

        columns, vector = operator_norm(layer_input(layer, input_shape, bounds=False), sigma_0, self.seed,
                                        start=self._operator_starts.get(layer.name))
        if vector is not None:
            self._operator_starts[layer.name] = vector
        return columns

    def _relu_bounds(self, m: Measurement, layers: List[Layer], inputs: Dict, comm: SingleProcess) -> Dict:
        from .. import relu_singular_values

        gathered = comm.all_gather_object(inputs) if comm.world_size > 1 else [inputs]
        results = {}
        if comm.rank == 0:
            for layer in layers:
                if not layer.relu:
                    continue
                w = _arrays.to_numpy(layer.matrix(), "W")  # bfloat16 too
                b = layer.bias()
                for g in GROUPS:
                    pieces = [p for part in gathered for p in part.get((layer.name, g), [])]
                    if not pieces:
                        continue
                    order = np.argsort(np.concatenate([idx for idx, _ in pieces]), kind="stable")
                    x = np.concatenate([rows for _, rows in pieces])[order]
                    ks = [k for k in self.relu_ks if k < min(w.shape)]
                    if not ks:
                        continue
                    options = {"seed": self.seed, "progress": False, **self.relu_options}
                    if x.shape[1] != w.shape[1] and x.shape[1] % w.shape[1] == 0:
                        # applied per position (tokens): a grouped layer, P positions per point (MATH.md section 9)
                        options["group_size"] = x.shape[1] // w.shape[1]
                        x = x.reshape(-1, w.shape[1])
                    spectrum = relu_singular_values(w, None if b is None else _arrays.to_numpy(b, "b"), x, ks,
                                                    leaky_slope=layer.leaky_slope, **options)
                    results[(layer.name, g)] = {"ks": np.asarray(spectrum.ks).tolist(),
                                                "bound": np.asarray(spectrum.bound).tolist(),
                                                "truncation_bound": np.asarray(spectrum.truncation_bound).tolist()}
        return comm.broadcast_object(results) if comm.world_size > 1 else results


class _FirstPass:
    """What pass 1 of a measurement collects (``Monitor._classify``), combined over ranks by ``reduce``.

    ``previous[i]`` is the output tap just before input tap ``i`` (-1 if
    none); ``same[i]`` whether tap ``i`` has equalled it on every batch so far.
    """

    def __init__(self, taps: Sequence[Tap], previous: List[int], n: int, samples: int):
        self.taps, self.previous, self.samples = taps, previous, samples
        self.verdict = np.zeros(n, dtype=np.int32)   # 0 unseen, 1 incorrect, 2 correct
        self.dims = np.zeros(len(taps), dtype=np.int64)
        self.shapes = np.zeros((len(taps), 3), dtype=np.int64)   # C, H, W of each image input
        self.tap_bits = np.zeros(len(taps), dtype=np.int64)
        self.same = np.array([1 if p >= 0 else 0 for p in previous], dtype=np.int64)
        self.projected: Optional[Dict[int, np.ndarray]] = None   # tap -> n x samples products (one-pass route)
        self.borrowed: Dict[int, List[Tuple[int, int]]] = {}     # tap -> batches equal to its previous tap's
        self.dtype = "float32"

    def reduce(self, comm: SingleProcess, dtype: Optional[str]) -> None:
        """Combines the ranks' parts; fixes the precision of the products (``dtype``, else the widest tap's)."""
        self.verdict = comm.all_reduce(self.verdict, "sum")
        self.dims = comm.all_reduce(self.dims, "max")
        self.shapes = comm.all_reduce(self.shapes, "max")
        self.tap_bits = comm.all_reduce(self.tap_bits, "max")
        self.same = comm.all_reduce(self.same, "min")
        if not (self.verdict > 0).all():
            raise RuntimeError("internal error: some probe points were classified by no rank")
        self.dtype = dtype or _DTYPE_CODES[int(self.tap_bits.max(initial=32))]
        if self.projected is not None and dtype is None and any(
                _DTYPE_CODES[int(bits)] != self.dtype for bits in self.tap_bits if bits):
            self.projected = None   # formed in each tap's own precision: pass 2 forms them again
        if self.projected is not None and comm.world_size > 1:
            self._combine_products(comm)

    def _combine_products(self, comm: SingleProcess) -> None:
        """Every rank's rows into every rank's arrays (each row was formed by one rank, or is borrowed)."""
        keys = [i for i in range(len(self.taps)) if not self.same[i]]
        if keys:
            blank = np.zeros((self.verdict.size, self.samples))
            stacked = comm.all_reduce(np.stack([self.projected.get(i, blank) for i in keys]), "sum")
            self.projected = {i: stacked[k] for k, i in enumerate(keys)}
        borrowed: Dict[int, List[Tuple[int, int]]] = {}
        for part in comm.all_gather_object(self.borrowed):
            for i, spans in part.items():
                borrowed.setdefault(i, []).extend(spans)
        self.borrowed = borrowed

    def summary(self):
        """``(correct, dims, dtype, aliases, input_shapes)`` of the probe set."""
        aliases = {i: self.previous[i] for i in range(len(self.taps)) if self.same[i]}
        input_shapes = {tap.layer.name: tuple(int(d) for d in self.shapes[i])
                        for i, tap in enumerate(self.taps) if tap.site == "input" and self.shapes[i].all()}
        return self.verdict == 2, self.dims, self.dtype, aliases, input_shapes

    def pooled(self, plan: Design, aliases: Dict[int, int]) -> Dict[int, np.ndarray]:
        """Each measured tap's products at the pooled points, in pool order (as ``Monitor._stream`` gives them)."""
        if not plan.comparable:
            return {}
        out = {}
        for i in range(len(self.taps)):
            if i in aliases:
                continue
            # A tap no batch reached keeps zero products, as in pass 2.
            full = self.projected.get(i, np.zeros((self.verdict.size, self.samples)))
            for a, b in self.borrowed.get(i, ()):   # batches on which it equalled its previous output tap
                full[a:b] = self.projected[self.previous[i]][a:b]
            out[i] = full[plan.pool]
        return out


@dataclass
class Measurement:
    """Everything one ``measure()`` saw, kept as ``Monitor.last`` for inspection.

    ``subsets[group][r]`` are the probe indices of subsample ``r``;
    ``widths[(layer, site, group)][r]`` its Gaussian mean width;
    ``comparisons[(layer, site)]`` the calibrated comparison (MATH.md section 11) and ``design`` its sets.

    Attributes
    ----------
    index, step, epoch : int
        Which measurement this is and when it was taken.
    correct : numpy.ndarray of bool
        Per probe point: classified correctly.
    subsets, widths, comparisons, design
        As above.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import Monitor
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> monitor = Monitor(model, torch.randn(40, 4), torch.randint(0, 3, (40,)), samples=50, repeats=2)
    >>> _ = monitor.measure()
    >>> last = monitor.last
    >>> last.correct.shape, len(last.subsets["correct"]), ("0", "input", "correct") in last.widths
    ((40,), 2, True)
    """

    index: int
    step: int
    epoch: int
    correct: np.ndarray
    subsets: Dict[str, List[np.ndarray]]
    widths: Dict[Tuple[str, str, str], List[float]] = field(default_factory=dict)
    comparisons: Dict[Tuple[str, str], Comparison] = field(default_factory=dict)
    design: Optional[Design] = None

    def __repr__(self) -> str:
        sizes = {g: (len(v[0]) if v else 0) for g, v in self.subsets.items()}
        layers = sorted({key[0] for key in self.widths})
        return (f"Measurement(#{self.index}, step {self.step}, epoch {self.epoch}, accuracy "
                f"{self.correct.mean():.4f} on {self.correct.size} points, groups of {sizes.get('correct', 0)}, "
                f"{len(self.widths)} widths over layers {layers})")
