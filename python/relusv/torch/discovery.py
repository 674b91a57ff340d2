"""Finding the layers of any ``nn.Module``: which modules are ``ReLU(W x + b)`` layers, and what follows them.

A *layer* in the sense of MATH.md is ``phi(x) = ReLU(W x + b)`` (sections 1-2;
``W`` is the kernel matrix ``K_mat`` for a convolution, section 9). In a
PyTorch model it is a weight module (``nn.Linear``, ``DoubleLinear``,
``nn.Conv2d``, ``DoubleConv2d``, or a type added with ``register_layer_kind``) whose output
feeds an activation. ``discover(model)`` finds them all and is the one place
the monitor, ``analyze``, harmonic pruning and the report learn the layers of
a model from:

- **tracing**: ``torch.fx`` records the forward pass as a graph (weight
  modules are kept as leaves), so activations given as modules (``nn.ReLU``,
  ``nn.LeakyReLU``) and as functions (``F.relu``, ``torch.relu``,
  ``torch.relu_``, ``x.relu()``, ``F.leaky_relu``, in place or not) are
  found wherever the forward pass applies them; after an in-place operation
  (``h.add_(x)``, ``F.relu(h, inplace=True)``, ``nn.ReLU(inplace=True)``)
  every later use of the changed tensor reads the changed value, as in the
  model (``relusv.torch._graph.follow_in_place``);
- **BatchNorm** (``BatchNorm1d`` / ``BatchNorm2d`` with running statistics)
  between a layer and its activation is folded in eval mode (MATH.md section 9,
  ``fold_batchnorm``): the layer analysed is ``ReLU(W' x + b')``;
- ``Dropout`` and ``Identity`` between them are skipped (identities in eval mode);
- activations are named by the function they apply (``relusv.torch.activations``:
  ``relu``, ``leaky_relu``, ``relu6``, ``hardtanh``, ``clamp``, ``silu``,
  ``gelu``, ``tanh``, ...), also inside composite modules that tracing
  enters (a BatchNorm-plus-activation module calling ``F.batch_norm`` with
  its own running statistics, as timm's ``BatchNormAct2d``: the BatchNorm is
  folded, the activation found);
- a layer followed by a clipped activation (ReLU6, hardtanh) has
  ``clipped = True``: its ReLU quantities are computed with that activation
  (MATH.md section 10); a layer followed by another activation (GELU, Tanh,
  SiLU, ...) is listed with ``relu = False``: its widths are measured after
  the activation, its ReLU quantities are not;
- a ``torch.nn`` module holding weight layers is traced through when it
  traces on its own; otherwise (``nn.TransformerEncoderLayer``'s fast-path
  checks, ``nn.MultiheadAttention``) it stays one node, ``opaque`` says why,
  and its weight layers are hooked one by one (``linear1`` of a
  transformer layer with the layer's ``activation``); the projections of
  ``nn.MultiheadAttention`` are listed as skipped (its forward reads their
  weights, no hook fires);
- ``sites`` lists every ReLU-family or clipped activation with the affine
  branches feeding it (``relusv.torch.sites``: residual sums, pre-activation
  BatchNorms);
- a layer whose output feeds no activation (the logits, a residual sum) is
  listed with ``activation = None``;
- a module the forward pass calls more than once is listed as skipped
  (its hooks would see several activations per batch).

Every layer is named by its qualified name in ``model.named_modules()``,
everywhere relusv names it (monitor histories, ``analyze`` tables, report
tables, CSV/JSON files, figure labels).

Models that do not trace (data-dependent control flow) fall back to the order
in which modules are registered, which is the execution order of an
``nn.Sequential`` and of most hand-written stacks; a warning says so. With
``layers=[names]`` exactly the named modules are used.
"""
from __future__ import annotations

import warnings
from typing import Iterable, List, Optional

from torch import nn

from ..errors import InvalidInputError, InvalidTypeError
from ._graph import (  # noqa: F401 (re-exported: the names relusv.torch and its modules import from here)
    _BATCHNORMS,
    _PASSTHROUGH,
    LAYER_KINDS,
    Discovery,
    Layer,
    _discover_registered,
    _discover_traced,
    _trace,
    fold_batchnorm,
    functional_batchnorm,
    layer_kind,
    register_layer_kind,
)
from .sites import find_sites


def discover(model: nn.Module, layers: Optional[Iterable[str]] = None) -> Discovery:
    """The layers of ``model`` (see the module documentation).

    Parameters
    ----------
    model : nn.Module
        Wrappers (``DataParallel``, ``DistributedDataParallel``) must be removed
        first (``unwrap``).
    layers : iterable of str, optional
        Qualified names of the modules to use, in this order. A weight module
        keeps the activation and BatchNorm tracing finds after it; any other
        module is a ``kind="module"`` layer whose output is measured as is.

    Returns
    -------
    Discovery
        The layers in execution order (``.layers``), the activation sites, the
        skipped modules and the method used.

    Raises
    ------
    InvalidTypeError
        ``model`` is not a ``torch.nn.Module``, or ``layers`` is a string.
    InvalidInputError
        A name in ``layers`` that is not a submodule, or one named twice.

    Examples
    --------
    >>> from torch import nn
    >>> from relusv.torch import discover
    >>> found = discover(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    >>> [(layer.name, layer.kind, layer.activation) for layer in found.layers]
    [('0', 'linear', 'relu'), ('2', 'linear', None)]
    >>> found.method
    'trace'
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(layers, str):
        raise InvalidTypeError(f"layers must be a list of submodule names, got the string {layers!r} "
                               f"(for one layer: layers=[{layers!r}])")
    if layers is not None:
        layers = list(layers)
        repeated = sorted({name for name in layers if layers.count(name) > 1}, key=str)
        if repeated:
            raise InvalidInputError(f"layers names {', '.join(map(repr, repeated))} more than once")
    trace_error, graph, opaque, sites = None, None, {}, []
    try:
        graph = _trace(model, opaque)
        traced, skipped = _discover_traced(model, graph, opaque)
        method = "trace"
    except Exception as error:  # tracing fails on data-dependent control flow and other dynamic code
        trace_error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        traced, skipped, method, graph = None, {}, "registration order", None
    if traced is not None:
        sites = find_sites(model, graph, traced)
    if layers is None:
        found = traced if traced is not None else _discover_registered(model)
        if traced is None:
            warnings.warn(f"relusv: {type(model).__name__} does not trace with torch.fx ({trace_error}); layers "
                          "were found by registration order, which assumes modules run in the order they are "
                          "registered. Pass layers=[...] to choose them.", stacklevel=3)
        return Discovery(found, method, skipped, trace_error, sites, opaque, graph)
    modules = dict(model.named_modules())
    known = {layer.name: layer for layer in (traced if traced is not None else _discover_registered(model))}
    chosen = []
    for name in layers:
        if not isinstance(name, str) or not name or name not in modules:
            raise InvalidInputError(f"the model has no submodule named {name!r}; known names: "
                             f"{[n for n in modules if n][:20]}")
        if name in known:
            chosen.append(known[name])
        elif layer_kind(modules[name]) is not None:
            reason = skipped.get(name, "no activation found after it")
            chosen.append(Layer(name, modules[name], layer_kind(modules[name]), notes=(reason,)))
        else:
            chosen.append(Layer(name, modules[name], "module", notes=("output measured as is",)))
    return Discovery(chosen, "names", {}, trace_error, [], opaque, graph)


def relu_layers(model: nn.Module, layers: Optional[Iterable[str]] = None, what: str = "relusv",
                branches: bool = False) -> List[Layer]:
    """The ReLU layers of ``discover(model)`` (all named layers with ``layers=``); a clear error when none.

    The default for the monitor: every weight layer whose output feeds a ReLU
    or leaky ReLU; with ``branches`` (harmonic pruning's default) also those
    reaching one through a residual sum (``Discovery.relu_layers``).
    """
    found = discover(model, layers)
    if layers is not None:
        return found.layers
    chosen = found.relu_layers(branches)
    if not chosen:
        listed = ", ".join(layer.describe() for layer in found.layers[:3]) or "no Linear / Conv2d modules"
        if len(found.layers) > 3:
            listed += f", and {len(found.layers) - 3} more"
        raise InvalidInputError(f"{what}: the model has no Linear / Conv2d layer followed by a ReLU ({listed}); "
                         "name the modules to watch with layers=[...]")
    return chosen
