"""``analyze``: one call from a model and labelled data to a per-layer table (MATH.md sections 2-6, 9).

For every layer ``discover`` finds (qualified module names, BatchNorm folded),
over a probe set split into correctly and incorrectly classified points:

- the spectrum of ``W`` (``K_mat = K.reshape(C_out, -1)`` for a convolution, a
  grouped one's ``K`` in its dense block-diagonal form, MATH.md section 9): numerical rank, ``sigma_0``, smallest ``sigma``, stable
  rank ``||W||_F^2 / sigma_0^2``;
- the Gaussian mean width and effective dimension ``(w / diam)^2`` of both
  groups, at the layer's input and at its activation's output, on sets of
  equal size compared by the calibrated procedure of MATH.md section 11
  (``relusv.analysis.compare``): ``repeats`` subsample pairs on the same
  Gaussian directions (seed ``seed``), a permutation p-value from
  ``permutations`` relabellings of the pooled points, the effect
  ``D / mean(f)`` with its interval, Holm-adjusted over every
  comparison of the table, and the verdict ``correct larger`` /
  ``incorrect larger`` / ``no difference shown``;
- for a ReLU layer, certified bounds of ``s_k(ReLU(W . + b); X)`` over each
  group's inputs (first subsample), at ranks ``k`` below ``rank(X W^T)``:
  from there on ``s_k = 0`` exactly (MATH.md section 2), so those ranks are
  stated, not computed; ``s_0`` is exact.

Two passes over the probe data, under ``torch.no_grad()`` in eval mode (the
modes, gradients, parameters and CPU random generator are restored): the
first classifies, the second keeps the activations of the pooled points only
(at most ``max_group_size`` of each group).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .. import _arrays
from ..errors import InvalidInputError, InvalidTypeError
from ..layer_table import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_RELU_POINTS,
    DEFAULT_REPEATS,
    LayerInput,
    compare_groups,
    progress_bar,
    table_records,
    table_settings,
)
from ..spectra import machine_epsilon
from ..width import DEFAULT_SAMPLES, DEFAULT_TRIM
from ._layers import TrainingModes, forward, model_device, predicted_labels, unwrap
from ._rows import RowStore
from ._threads import one_torch_thread
from .discovery import Discovery, Layer, discover
from .probe import class_targets, probe_data


class _Capture:
    """Forward hooks keeping the chosen rows of every layer's input and activation output (flattened)."""

    def __init__(self, layers: List[Layer]):
        self.layers = layers
        self.rows: Optional[np.ndarray] = None       # positions in the batch to keep
        self.store = RowStore(0)                   # sized once the chosen points are known (``_passes``)
        self.input_shapes: Dict[str, tuple] = {}   # per-point input shape (to rebuild a convolution's images)
        self.dimensions: Dict[tuple, int] = {}      # per-point size of every captured site

    def hooks(self) -> List[Any]:
        handles = []
        for layer in self.layers:
            def hook(_module, inputs, output, layer=layer):
                if layer.weighted:
                    self.input_shapes[layer.name] = tuple(inputs[0].shape[1:])
                    self.dimensions[(layer.name, "input")] = int(np.prod(inputs[0].shape[1:]))
                if torch.is_tensor(output):
                    self.dimensions[(layer.name, "output")] = int(np.prod(output.shape[1:]))
                if self.rows is None or self.rows.size == 0:
                    return
                keep = torch.as_tensor(self.rows, device=output.device)
                if layer.weighted:
                    self.store.keep((layer.name, "input"), inputs[0].index_select(0, keep))
                self.store.keep((layer.name, "output"), layer.activate(output.index_select(0, keep)))
            handles.append(layer.module.register_forward_hook(hook))
        return handles

    def arrays(self) -> Dict[tuple, np.ndarray]:
        return self.store.result()


def _passes(model: nn.Module, data, layers: List[Layer], predict: Callable, group_settings: dict,
            show: Optional[bool], tap=None):
    """Pass 1 (classify) and pass 2 (capture the chosen rows).

    Returns ``(groups, activations, input_shapes, dimensions, repeated)``: ``activations[(name, site)]`` has one
    row per entry of ``groups.chosen()`` (the pooled probe indices, sorted); ``dimensions[(name, site)]`` its
    size per point; ``repeated`` the layers that ran more than once per forward pass (found by registration
    order inside a model that does not trace: no row per point), with why they are not analysed."""
    device = model_device(model)
    verdicts: List[np.ndarray] = []
    calls: Dict[str, int] = {}
    counters = [layer.module.register_forward_hook(
        lambda *_, name=layer.name: calls.__setitem__(name, calls.get(name, 0) + 1)) for layer in layers]
    passes = 0
    try:
        for a, b, inputs, targets in progress_bar(data.iterate(), "classifying", show=show):
            output = forward(model, inputs, device)
            passes += 1
            labels = torch.as_tensor(predict(output)).reshape(-1).cpu()
            if labels.shape[0] != b - a:
                raise InvalidInputError(f"predict returned {labels.shape[0]} labels for a batch of {b - a} points")
            verdicts.append((labels == class_targets(targets, output).to(labels.dtype)).numpy())
    finally:
        for h in counters:
            h.remove()
    repeated = {name: f"ran {count / passes:g} times per forward pass (where tracing cannot see): no row per point, "
                      "not analysed" for name, count in calls.items() if count > passes}
    correct = np.concatenate(verdicts)
    groups = compare_groups(correct, **group_settings)
    chosen = groups.chosen()
    capture = _Capture([layer for layer in layers if layer.name not in repeated])
    capture.store = RowStore(chosen.size)
    if tap is not None:
        tap.store = RowStore(chosen.size, capture.store.spent)   # one memory budget for both
    handles = capture.hooks()
    try:
        for a, b, inputs, _ in progress_bar(data.iterate(), "activations", show=show):
            capture.rows = chosen[(chosen >= a) & (chosen < b)] - a
            if capture.rows.size or (a == 0 and not chosen.size):   # no points chosen: one batch for the sizes
                if tap is None:
                    forward(model, inputs, device)
                else:   # the traced graph, keeping the activation sites' branch inputs (hooks fire as in model(x))
                    tap.rows = torch.as_tensor(capture.rows)
                    forward(tap.run, inputs, device, model)
    finally:
        for h in handles:
            h.remove()
    return groups, capture.arrays(), capture.input_shapes, capture.dimensions, repeated


def _layer_map(layer: Layer, input_shape: Optional[tuple]):
    """The row's layer as a one-branch ``JointMap`` (BatchNorm folded), for convolutions (channel rank over the
    patches, grouped kernels as their block-diagonal dense kernel, data-rank zeros), linear layers applied per
    position (tokens: MATH.md section 9 with ``P`` = positions) and clipped activations; None where the
    default linear path applies or no map can be built (the reason is returned)."""
    from .sites import JointMap, branches_of_layer

    if not layer.bounded or input_shape is None:
        return None, ""
    if layer.kind == "linear" and len(input_shape) == 1 and not layer.clipped:
        return None, ""
    branches, bias = branches_of_layer(layer)
    try:
        return JointMap(branches, bias, activation_of(layer), [tuple(input_shape)]), ""
    except InvalidInputError as error:
        return None, f"ReLU bounds not computed: {error}"


def activation_of(layer: Layer):
    """The layer's activation as an ``Activation`` (ReLU family or clipped)."""
    from .activations import RELU_FAMILY, Activation

    return layer.act if layer.act is not None else Activation(layer.activation or "relu", RELU_FAMILY,
                                                              slope=layer.leaky_slope)


def _conv_norm_estimate(kernel: np.ndarray, size: tuple, seed: int, geometry: Dict[str, Any], start=None):
    """A convolution's operator norm, exact or a certified bracket (``conv_operator_norm``; MATH.md section 9)."""
    from .conv_operator import conv_operator_norm

    return conv_operator_norm(kernel, size, seed=seed, start=start, **geometry)


def layer_input(layer: Layer, input_shape: Optional[tuple] = None, bounds: bool = True) -> LayerInput:
    """The table's view of a discovered layer: ``W`` (or ``K_mat``) and bias with BatchNorm folded, float64.

    ``bounds=False`` leaves out the map the ReLU bounds need (``_layer_map``): enough for the spectrum and
    the operator norm, and cheaper (``Monitor`` measures these at every step it is asked to).
    """
    module = layer.module
    parameters = int(sum(p.numel() for p in module.parameters()))
    if not layer.weighted:
        return LayerInput(layer.name, layer.kind, type(module).__name__, layer.activation, False, 0.0, "",
                          layer.notes, None, None, None, parameters)
    stored = module.weight
    bias = layer.bias()
    grouped = getattr(module, "groups", 1) != 1
    joint, reason = _layer_map(layer, input_shape) if bounds else (None, "")
    notes = layer.notes + ((reason,) if reason else ())
    if grouped and joint is not None:
        notes = notes + (f"groups = {module.groups}: bounds of the block-diagonal kernel matrix (approximants of any "
                         "structure with rank <= k)",)
    matrix = joint.matrix if joint is not None and grouped else _arrays.to_numpy(layer.matrix(), "W")
    return LayerInput(layer.name, layer.kind, type(module).__name__, layer.activation,
                      layer.bounded and (joint is not None or layer.kind == "linear"), layer.leaky_slope,
                      layer.folded, notes, tuple(stored.shape), matrix.astype(np.float64),
                      None if bias is None else _arrays.to_numpy(bias, "b").astype(np.float64), parameters,
                      stored.dtype, joint, input_shape,
                      _conv_geometry(module) if layer.kind == "conv2d" else None,
                      operator_norm_estimate=_conv_norm_estimate if layer.kind == "conv2d" else None,
                      phi_zero=None if joint is None else joint.at_zero)


def site_input(site, shapes: Dict[str, tuple]) -> LayerInput:
    """The table's view of a multi-branch (or weightless) activation site (MATH.md section 10): the joint map
    ``[A_1, ..., A_J]`` of the stacked branch inputs, or GMW only with the reason no map was built."""
    from .sites import JointMap

    if len(site.branches) == 1:
        notes = (f"activation site: {site.activation.describe()} of one affine branch ({site.branches[0].describe()})",)
    else:
        branches = "; ".join(f"branch {j + 1}: {b.describe()}" for j, b in enumerate(site.branches))
        notes = (f"activation site: {site.activation.describe()} of the sum of {len(site.branches)} affine branches "
                 f"({branches})",)
    shared = _shared_inputs(site.branches)
    if shared:
        notes = notes + (f"branches {shared} read the same graph value: the operator norm is that of the stacked "
                         "map [A_1, ..., A_J] (MATH.md section 10); as a map of the shared value it is the norm of "
                         "the sum of those branches, up to sqrt(J) times larger",)
    modules = [b.module for b in site.branches if b.module is not None]
    parameters = int(sum(p.numel() for m in modules for p in m.parameters()))
    kind = "conv2d" if any(b.kind == "conv2d" for b in site.branches) else "linear"
    in_shapes = [shapes.get(b.input) for b in site.branches]
    reason = site.reason or ("" if all(s is not None for s in in_shapes) else "not measured (no value seen)")
    joint = None
    if not reason:
        try:
            joint = JointMap(site.branches, site.bias, site.activation, in_shapes)
            kind = "conv2d" if joint.conv else "linear"
        except InvalidInputError as error:
            reason = f"no joint map: {error}"
    total = sum(int(np.prod(s)) for s in in_shapes) if reason == "" else None
    if joint is None:
        return LayerInput(site.name, "site", "activation site", site.activation.name, False, 0.0, "",
                          notes + (reason,), None, None, None, parameters)
    return LayerInput(site.name, kind, "activation site", site.activation.name, True, site.activation.slope,
                      ", ".join(name for b in site.branches for name in b.layers[1:]), notes,
                      tuple(joint.matrix.shape), joint.matrix, joint.bias, parameters,
                      max((m.weight.dtype for m in modules), key=machine_epsilon, default=torch.float64), joint, (total,),
                      None, phi_zero=joint.at_zero, norm=lambda seed, joint=joint: joint.operator_norm(seed))


def _shared_inputs(branches: Sequence) -> str:
    """The branches (numbered from 1) that read a graph value another branch reads, e.g. ``"1 and 2"``; ``""``
    where every branch has its own input."""
    inputs = [b.input for b in branches]
    shared = [str(j + 1) for j, name in enumerate(inputs) if inputs.count(name) > 1]
    return ", ".join(shared[:-1]) + " and " + shared[-1] if shared else ""


def _conv_geometry(module: nn.Module) -> Optional[Dict[str, Any]]:
    """The geometry ``relusv.torch.conv_operator_norm`` takes, from a Conv2d or DoubleConv2d (string padding as
    integers, ``integer_padding``); None where the padding is asymmetric (``'same'`` with an even kernel)."""
    from ._conv_geometry import integer_padding

    try:
        padding = integer_padding(module)
    except InvalidInputError:
        return None
    return {"stride": tuple(module.stride), "padding": padding, "dilation": tuple(module.dilation),
            "padding_mode": module.padding_mode, "groups": int(getattr(module, "groups", 1))}


def _own_sites(found: Discovery) -> list:
    """The activation sites that need their own row: every ReLU-family or clipped site not analysed in the row of
    a discovered layer (several branches, a BatchNorm on a non-weight input, a weight layer called twice...)."""
    return [site for site in found.sites if site.layer is None]


def _site_tap(model: nn.Module, found: Discovery, sites: list):
    """A runner of the traced graph keeping what the sites' rows need (None without such sites)."""
    from .sites import SiteTap, site_nodes

    return SiteTap(model, found.graph, site_nodes(sites)) if sites else None


def _site_arrays(sites: list, tap, dims: Dict[tuple, int]) -> Dict[tuple, np.ndarray]:
    """Per site: the stacked branch inputs (flattened, concatenated) and the activation's output."""
    arrays = tap.arrays()
    out = {}
    for site in sites:
        inputs = [site_branch.input for site_branch in site.branches]
        if all(name in tap.shapes for name in inputs):
            dims[(site.name, "input")] = int(sum(np.prod(tap.shapes[name]) for name in inputs))
        if site.node in tap.shapes:
            dims[(site.name, "output")] = int(np.prod(tap.shapes[site.node]))
        if all(name in arrays for name in inputs):   # one branch: its rows as kept (read only), no copy
            out[(site.name, "input")] = arrays[inputs[0]] if len(inputs) == 1 else \
                np.concatenate([arrays[name] for name in inputs], axis=1)
        if site.node in arrays:
            out[(site.name, "output")] = arrays[site.node]
    return out


def _branch_notes(rows: List[LayerInput], sites: list) -> List[LayerInput]:
    """Layer rows that are a branch of a multi-branch site say where their ReLU quantities are."""
    import dataclasses

    feeds: Dict[str, List[str]] = {}
    for site in sites:
        for branch in site.branches:
            if branch.module is not None:
                feeds.setdefault(branch.layers[0], []).append(site.name)
    return [dataclasses.replace(row, notes=row.notes + tuple(
        f"a branch of the activation site {name} (its ReLU quantities are in that row)" for name in feeds[row.name]))
        if row.name in feeds else row for row in rows]


def _in_graph_order(found: Discovery, layer_rows: List[LayerInput], site_rows: List[LayerInput]) -> List[LayerInput]:
    """Layer rows (at their module's first call) and site rows (at their activation) in the graph's order."""
    position: Dict[str, int] = {}
    for i, node in enumerate(found.graph.nodes):
        if node.op == "call_module":
            position.setdefault(node.target, i)

    def where(name: str) -> int:
        while name and name not in position:
            name = name.rpartition(".")[0]
        return position.get(name, len(position))

    keyed = [((where(row.name), 0, j), row) for j, row in enumerate(layer_rows)]
    keyed += [((site.order, 1, j), row) for j, (site, row) in enumerate(zip(_own_sites(found), site_rows))]
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def analyze(model: nn.Module, X: Any, y: Any = None, *, layers: Optional[Iterable[str]] = None, seed: int = 0,
            relu_bounds: bool = True, group_size: Optional[int] = None,
            max_group_size: Optional[int] = DEFAULT_MAX_GROUP_SIZE, repeats: int = DEFAULT_REPEATS,
            permutations: Optional[int] = None, bootstrap: int = DEFAULT_BOOTSTRAP,
            alpha: float = DEFAULT_ALPHA, samples: int = DEFAULT_SAMPLES, trim: float = DEFAULT_TRIM,
            relu_points: Optional[int] = DEFAULT_RELU_POINTS, relu_options: Optional[Dict[str, Any]] = None,
            unit_sphere: bool = False, sphere_points: int = 2000, sphere_max_steps: Optional[int] = None,
            batch_size: int = 1024, predict: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
            progress: Optional[bool] = None):
    """One row per layer of ``model``: spectra, widths of correct vs incorrect points, ReLU bounds.

    Parameters
    ----------
    model : nn.Module
        Any module (``DataParallel`` / ``DistributedDataParallel`` are unwrapped).
        Layers: ``relusv.torch.discover`` (tracing; BatchNorm folded; layers
        before GELU / Tanh listed as not ReLU; the logits layer listed without
        activation), or exactly the modules named in ``layers``.
    X, y
        Probe inputs and class targets: tensors, NumPy arrays or memmaps; or
        ``X`` a map-style dataset of ``(input, target)`` pairs, or a
        ``DataLoader`` of such batches (not shuffled and without random
        transforms: it is read twice, and a second pass with other labels or
        inputs is refused), with ``y=None``.
    seed : int
        Seeds the Gaussian directions (those of ``relusv.gmw(..., seed=seed)``, shared by both groups
        and every repeat) and, through ``numpy.random.SeedSequence``, the pools, subsamples,
        relabellings and bootstrap resamples.
    relu_bounds : bool
        Compute ReLU singular-value bounds over each group's inputs for every
        ReLU layer (``relusv.relu_singular_values``, float64; convolutions
        through ``relusv.torch.relu_singular_values`` where available).
    group_size, max_group_size : int, optional
        Each group enters with at most ``max_group_size`` of its points (a seeded random subset; None:
        all); the compared sets have the size of the smaller, at most ``group_size``.
    repeats : int
        Subsample pairs averaged per comparison (MATH.md section 11).
    permutations : int, optional
        Random relabellings of the pooled points (the permutation p-value; the smallest possible p is
        ``1 / (permutations + 1)``). Default: from the size ``m`` of the table's Holm family
        (``relusv.analysis.compare.permutations_for``: at least ``ceil(2 m / alpha) - 1`` and at least 500,
        so that a verdict is attainable), drawn in two stages: a comparison whose first 500 relabellings
        already put its p-value at ``alpha`` or above stops there (``attrs["design"]`` holds the count and
        the rule).
    bootstrap : int
        Bootstrap resamples for the effect's interval (0, the default: the interval from the spread of the
        permutation distribution; MATH.md section 11).
    alpha : float
        Family-wise level of the verdicts (Holm over every comparison of the table) and
        ``1 - alpha`` the level of the effect intervals.
    samples, trim
        The GMW estimator (as ``relusv.gmw``).
    relu_points : int or None
        Ranks per bound curve, evenly spaced over ``0 .. rank(X W^T) - 1``; None for every rank.
    relu_options : dict, optional
        Extra keyword arguments of ``relu_singular_values`` (``max_steps``, ``time_budget``, ...).
        Default ``max_steps``: ``DEFAULT_RELU_MAX_STEPS`` (50), a survey's budget; and for a curve (of a
        linear or conv layer, or an activation site) whose evaluation over its points costs more than
        ``SURVEY_FIT_WORK``
        (1e7) multiply-adds, a fit stride growing with that work (2, 4, up to 8), and above 8x that work
        no fits: the unfitted ranks take the SVD, data-aware, extended and previous-``k`` candidates
        (``relusv.layer_table.survey_fit_stride``; on ResNet-18 at 32x32 most curves are candidates
        only; ``relu_options={"fit_stride": 1}`` fits every rank; ``relu_options={"max_steps": 0}``, no
        fits, a quicker survey: DenseNet-121 at 32x32 81 s -> 51 s, its curves' bound ratios up to 4 %
        and MobileNetV2's up to 16 % higher, ``bench/RESULTS.md``). Every bound is certified whatever the
        budget, more work only tightens it. The curves run side by side on a pool of one thread per core,
        each with ``threads=1`` unless ``relu_options`` names a count (torch and NumPy's BLAS at one
        thread meanwhile); a layer's SVD of ``W`` is computed once for its spectrum and both groups'
        curves (``relusv.WeightSVD``).
    unit_sphere : bool
        Also bound each linear ReLU layer over a seeded sample of ``sphere_points`` points
        of the unit sphere with ``b = 0`` (column ``s0_unit_sphere``), with
        ``sphere_max_steps`` Adam steps (default: ``relu_options``' or the library's).
    batch_size : int
        Probe batch size for arrays and datasets.
    predict : callable, optional
        ``predict(output) -> labels``; default argmax of the logits.
    progress : bool, optional
        Progress as everywhere in relusv (``relusv.ProgressOption``); None shows it, False is silent.

    Returns
    -------
    pandas.DataFrame
        One row per layer, and one per activation site that no layer row
        covers (``relusv.torch.sites``, MATH.md section 10: a ReLU after a
        residual sum, analysed as the joint map ``[A_1, ..., A_J]`` of the
        stacked branch inputs with ``module`` ``"activation site"`` and the
        branches in ``notes``; a BatchNorm-ReLU on a concatenation), in
        graph order. ReLU6 / hardtanh rows are computed with the clipped
        activation itself (``activation`` names it). Convolutions (grouped
        ones through their block-diagonal kernel matrix) and linear layers
        applied per token are bounded over all patches / tokens, ``P`` rows
        per point, with ``s_k = 0`` exactly from the rank of the patch
        pre-activations on (``zero_from``); ``s_0`` is computed with or
        without ``relu_bounds``. Columns: ``layer`` (qualified
        name), ``kind``, ``module``, ``activation``, ``relu``, ``folded``,
        ``notes``, ``weight_shape``, ``matrix_shape``, ``parameters``, ``rank``,
        ``sigma_0``, ``sigma_min``, ``stable_rank``; at the activation's output
        ``dimension``, ``gmw_correct``, ``gmw_correct_spread``,
        ``gmw_incorrect``, ``gmw_incorrect_spread`` (mean and spread over the
        repeats), ``gmw_ratio``, ``gmw_difference`` (``D``, the mean paired
        difference), ``gmw_effect`` (``D / mean(f)``) with ``gmw_effect_low``
        / ``gmw_effect_high`` (its interval at level ``1 - alpha``),
        ``gmw_p_value`` (permutation), ``gmw_p_adjusted`` (Holm over every
        comparison of the table), ``gmw_verdict`` (``correct larger`` /
        ``incorrect larger`` where ``gmw_p_adjusted < alpha``, else ``no
        difference shown``, or ``not compared: <reason>``), ``effdim_*``; the
        same with prefix ``input_`` at the layer's input; ``s0_*`` the same
        comparison of the exact ``s_0`` over each repeat's sets,
        ``relu_k10_*`` (smallest computed ``k`` with bound at most ``s_0 / 10``),
        ``relu_bound_ratio_*`` (median of ``bound_k / (sigma_k max ||x||)``),
        ``s0_unit_sphere`` and ``relu_bounds`` (``computed`` or why not).
        ``df.attrs`` holds the probe summary (``points``, ``accuracy``,
        ``correct``, ``incorrect``, ``group_size``, ``repeats``, ``comparison``
        — the reason groups are not compared, or ``""``), the settings, the
        ``design`` (repeats, permutations, bootstrap, caps, alpha, seed), the
        ``family`` size, the ``pool`` (probe indices), the
        ``subsets`` compared (probe indices per group and repeat), the
        ``discovery`` (method, skipped modules) and per-layer ``details``
        (all singular values, every subsample's width, the bound curves with
        ``zero_from``, the rank from which ``s_k = 0`` exactly).

    Raises
    ------
    InvalidTypeError
        ``model`` is not a ``torch.nn.Module``; a probe array of an unsupported type.
    InvalidInputError
        Bad settings (``repeats`` not a positive integer, ...), probe inputs and
        targets of different lengths or with NaN / infinity, a name in ``layers``
        that is not a submodule, ``predict`` returning the wrong number of labels.
    MemoryLimitError
        A computation would need more memory than ``relusv.memory_limit()``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import analyze
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    >>> df = analyze(model, X, y, progress=False)
    >>> list(df["layer"]), df.attrs["points"]
    (['0', '2'], 40)
    """
    import pandas as pd

    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(repeats, int) or repeats < 1:
        raise InvalidInputError(f"repeats must be a positive integer, got {repeats!r}")
    # Checked before the passes over the data (``table_settings`` owns the rules).
    settings = table_settings(seed, samples, trim, relu_bounds, relu_points, relu_options, unit_sphere, sphere_points,
                              sphere_max_steps)
    model = unwrap(model)
    found: Discovery = discover(model, layers)
    if not found.layers:
        skipped = [f"{name} ({why})" for name, why in list(found.skipped.items())[:3]]
        more = f", and {len(found.skipped) - 3} more" if len(found.skipped) > 3 else ""
        raise InvalidInputError(f"analyze: the model has no Linear / Conv2d layers to analyse (skipped: "
                                f"{', '.join(skipped) or 'none'}{more})")
    data = probe_data(X, y, batch_size)
    _arrays.require_floating_inputs(X, model)
    predict = predict or predicted_labels
    sites = _own_sites(found) if layers is None else []
    modes = TrainingModes(model)
    try:
        model.eval()
        tap = _site_tap(model, found, sites)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            groups, acts, shapes, dims, repeated = _passes(
                model, data, found.layers, predict,
                {"group_size": group_size, "max_group_size": max_group_size, "repeats": repeats,
                 "permutations": permutations, "bootstrap": bootstrap, "alpha": alpha, "seed": seed}, progress, tap)
    finally:
        modes.restore()
    if repeated:
        found.skipped.update(repeated)
        found.layers = [layer for layer in found.layers if layer.name not in repeated]
        if not found.layers:
            why = "; ".join(f"{name} {reason}" for name, reason in repeated.items())
            raise InvalidInputError(f"analyze: no layer runs once per forward pass ({why})")
    inputs = [layer_input(layer, shapes.get(layer.name)) for layer in found.layers]
    if sites:
        acts.update(_site_arrays(sites, tap, dims))
        inputs = _in_graph_order(found, _branch_notes(inputs, sites),
                                 [site_input(site, tap.shapes) for site in sites])
    with one_torch_thread():   # the table's torch work (patches, norms) runs in its pool's workers, one core each
        rows, attrs = table_records(inputs, groups, acts, settings, progress, dims)
    attrs["discovery"] = {"method": found.method, "skipped": dict(found.skipped), "trace_error": found.trace_error,
                          "layers": [layer.describe() for layer in found.layers],
                          "sites": [site.describe() for site in found.sites], "opaque": dict(found.opaque)}
    table = pd.DataFrame(rows)
    table.attrs.update(attrs)
    return table
