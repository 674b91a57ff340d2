"""The building blocks of ``relusv.torch.discover``: which modules are layers, BatchNorm folding,
the ``torch.fx`` tracer, and the classification of graph nodes (see ``relusv.torch.discovery`` for
what discovery finds and how). Activation sites (``relusv.torch.sites``) build on the same blocks."""
from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError
from ..layer_table import NOT_TRACED
from ._conv_geometry import block_diagonal_kernel
from .activations import CLIPPED, RELU_FAMILY, Activation, function_activation, module_activation, node_activation
from .double_conv import DoubleConv2d
from .double_linear import DoubleLinear

# -- which modules are layers ----------------------------------------------------------------------

LAYER_KINDS: Dict[type, str] = {nn.Linear: "linear", DoubleLinear: "linear", nn.Conv2d: "conv2d",
                                 DoubleConv2d: "conv2d"}
"""Weight-module types and their kind; ``register_layer_kind`` adds to it."""


def register_layer_kind(cls: type, kind: str) -> None:
    """Makes ``discover`` treat modules of type ``cls`` as layers of ``kind`` (``"linear"`` or ``"conv2d"``).

    The module must have a ``weight`` of shape ``(out, ...)`` (a property is
    fine, e.g. a product of factors) and a ``bias`` (or ``None``). It is kept
    as one node when tracing.

    Parameters
    ----------
    cls : type
        A module class (subclasses are matched too).
    kind : {"linear", "conv2d"}
        How its ``weight`` is read: a matrix ``(out, in)`` or a kernel
        ``(C_out, C_in, kh, kw)``.

    Returns
    -------
    None

    Raises
    ------
    InvalidInputError
        ``kind`` is neither ``"linear"`` nor ``"conv2d"``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import discover, register_layer_kind
    >>> class Scaled(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.raw, self.bias = nn.Parameter(torch.ones(3, 4)), None
    ...     @property
    ...     def weight(self):
    ...         return 2 * self.raw
    ...     def forward(self, x):
    ...         return x @ self.weight.T
    >>> register_layer_kind(Scaled, "linear")
    >>> [(layer.name, layer.kind) for layer in discover(nn.Sequential(Scaled(), nn.ReLU())).layers]
    [('0', 'linear')]
    """
    if kind not in ("linear", "conv2d"):
        raise InvalidInputError(f"kind must be 'linear' or 'conv2d', got {kind!r}")
    LAYER_KINDS[cls] = kind


def layer_kind(module: nn.Module) -> Optional[str]:
    """``"linear"``, ``"conv2d"``, or ``None`` for a module that is not a weight layer."""
    for cls in type(module).__mro__:
        if cls in LAYER_KINDS:
            return LAYER_KINDS[cls]
    return None


RELU = "relu"
LEAKY_RELU = "leaky_relu"
RELU_ACTIVATIONS = (RELU, LEAKY_RELU)   # nonnegatively homogeneous: MATH.md section 1

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASSTHROUGH = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)
# Reshapes commute with an elementwise activation: the layer is the same (no BatchNorm folded across them).
_RESHAPE_METHODS = {"view", "reshape", "flatten", "contiguous"}
_RESHAPE_FUNCTIONS = {torch.flatten, torch.reshape}


def _activation_module_name(module: nn.Module) -> Optional[str]:
    """The name of a non-ReLU activation module (``"gelu"`` for ``nn.GELU``), else ``None``."""
    act = module_activation(module)
    return None if act is None or act.family == RELU_FAMILY else act.name


# -- BatchNorm folding -------------------------------------------------------------------------------

def batchnorm_parts(bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(gamma / sqrt(var + eps), mu, beta)`` of an eval-mode BatchNorm in float64 (``gamma = 1``,
    ``beta = 0`` without affine parameters): ``BN(z) = scale (z - mu) + beta``. The one reading of a
    BatchNorm's statistics, for folding it into a layer and into the branches of an activation site."""
    mean, var = bn.running_mean.detach().double(), bn.running_var.detach().double()
    gamma = bn.weight.detach().double() if getattr(bn, "weight", None) is not None else torch.ones_like(mean)
    beta = bn.bias.detach().double() if getattr(bn, "bias", None) is not None else torch.zeros_like(mean)
    return gamma / torch.sqrt(var + bn.eps), mean, beta


def fold_batchnorm(weight: torch.Tensor, bias: Optional[torch.Tensor],
                   bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(W', b')`` of a layer followed by an eval-mode BatchNorm (MATH.md section 9, BatchNorm).

    ``BN(z) = gamma (z - mu) / sqrt(var + eps) + beta`` per output channel, so
    ``BN(W x + b) = W' x + b'`` with ``W' = diag(gamma / sqrt(var + eps)) W``
    and ``b' = gamma (b - mu) / sqrt(var + eps) + beta``. ``weight`` has the
    output channel first (``(m, n)`` or ``(C_out, C_in, kh, kw)``) and keeps
    its shape; ``gamma = 1``, ``beta = 0`` without affine parameters. Computed
    in float64.

    Parameters
    ----------
    weight : torch.Tensor
        The layer's weight, output channel first.
    bias : torch.Tensor or None
        The layer's bias (None: zero).
    bn : nn.BatchNorm1d or nn.BatchNorm2d
        The BatchNorm after the layer; its running statistics are used.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``W'`` (the shape of ``weight``) and ``b'`` (one entry per output channel), float64.

    Raises
    ------
    InvalidInputError
        ``bn`` keeps no running statistics, or its size differs from the layer's output channels.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from relusv.torch import fold_batchnorm
    >>> layer, bn = nn.Linear(4, 8), nn.BatchNorm1d(8).eval()
    >>> w, b = fold_batchnorm(layer.weight, layer.bias, bn)
    >>> x = torch.randn(5, 4, dtype=torch.float64)
    >>> torch.allclose(x @ w.T + b, bn(layer(x.float())).double(), atol=1e-5)
    True
    """
    if getattr(bn, "running_mean", None) is None or getattr(bn, "running_var", None) is None:
        raise InvalidInputError(f"{type(bn).__name__} keeps no running statistics (track_running_stats=False): "
                                "it has no eval-mode affine form to fold")
    w = weight.detach().double()
    channels = w.shape[0]
    if bn.num_features != channels:
        raise InvalidInputError(f"{type(bn).__name__} has {bn.num_features} features but the layer has {channels} "
                                "outputs")
    scale, mean, beta = batchnorm_parts(bn)
    b = bias.detach().double() if bias is not None else torch.zeros_like(mean)
    folded_w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
    folded_b = scale * (b - mean) + beta
    return folded_w, folded_b


# -- a discovered layer --------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Layer:
    """One discovered layer: a module, what the forward pass applies to its output, and how relusv treats it.

    Attributes
    ----------
    name : qualified module name (``model.get_submodule(name) is module``)
    module : the module
    kind : ``"linear"``, ``"conv2d"``, or ``"module"`` (any module named with ``layers=``)
    activation : ``"relu"``, ``"leaky_relu"``, another activation's name (``"gelu"``), or None
    leaky_slope : negative slope of a leaky ReLU (0 for ReLU)
    batchnorm : ``(name, module)`` of the BatchNorm folded into the layer, or None
    notes : what discovery did (folded, skipped, fell back), in words

    Examples
    --------
    >>> from torch import nn
    >>> from relusv.torch import discover
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
    >>> layer = discover(model).layers[0]
    >>> layer.name, layer.kind, layer.activation, layer.batchnorm[0]
    ('0', 'linear', 'relu', '1')
    """

    name: str
    module: nn.Module
    kind: str
    activation: Optional[str] = None
    leaky_slope: float = 0.0
    batchnorm: Optional[Tuple[str, nn.Module]] = None
    notes: Tuple[str, ...] = ()
    apply_activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, repr=False)
    act: Optional[Activation] = field(default=None, repr=False)
    activation_node: Optional[str] = None

    @property
    def relu(self) -> bool:
        """True when a ReLU or leaky ReLU with a slope in ``[0, 1)`` follows (ReLU quantities apply)."""
        if self.act is not None:
            return self.act.family == RELU_FAMILY
        return self.activation in RELU_ACTIVATIONS

    @property
    def clipped(self) -> bool:
        """True when a clipped activation follows (ReLU6, hardtanh, clamp: MATH.md section 10)."""
        return self.act is not None and self.act.family == CLIPPED

    @property
    def bounded(self) -> bool:
        """True when ReLU quantities are computed: ReLU, leaky ReLU, or a clipped activation (with its own
        definition, never as ReLU)."""
        return self.relu or self.clipped

    @property
    def weighted(self) -> bool:
        """True for a weight layer (``linear`` / ``conv2d``), whose input and spectra are measured."""
        return self.kind in ("linear", "conv2d")

    @property
    def folded(self) -> str:
        """``"bn (BatchNorm1d)"`` for a folded BatchNorm, else ``""``."""
        return "" if self.batchnorm is None else f"{self.batchnorm[0]} ({type(self.batchnorm[1]).__name__})"

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """The activation's output computed from the module's output ``z`` (BatchNorm in eval form; never in place)."""
        if self.batchnorm is not None:
            bn = self.batchnorm[1]
            z = nn.functional.batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        if self.activation == RELU:
            return torch.relu(z)
        if self.activation == LEAKY_RELU:
            return nn.functional.leaky_relu(z, self.leaky_slope)
        if self.clipped:
            return self.act(z)
        if self.apply_activation is not None:
            return self.apply_activation(z.clone())
        return z

    def weight(self) -> torch.Tensor:
        """The weight with any BatchNorm folded (then in float64), detached, in the module's shape."""
        w = self.module.weight.detach()
        if self.batchnorm is None:
            return w
        return fold_batchnorm(w, self.module.bias, self.batchnorm[1])[0]

    def bias(self) -> Optional[torch.Tensor]:
        """The bias with any BatchNorm folded (then in float64; None without bias and without BatchNorm)."""
        b = getattr(self.module, "bias", None)
        if self.batchnorm is None:
            return None if b is None else b.detach()
        return fold_batchnorm(self.module.weight.detach(), b, self.batchnorm[1])[1]

    def matrix(self) -> torch.Tensor:
        """``W`` as an ``(out, in)`` matrix: the weight, or ``K_mat = K.reshape(C_out, -1)`` (MATH.md section 9), a
        grouped convolution's ``K`` in its dense block-diagonal form (``block_diagonal_kernel``): the matrix of the
        operator whatever activation follows."""
        w = block_diagonal_kernel(self.weight(), int(getattr(self.module, "groups", 1)))
        return w.reshape(w.shape[0], -1)

    def folded_module(self) -> nn.Module:
        """The module itself, or a copy with the BatchNorm folded into its weight and bias."""
        if self.batchnorm is None:
            return self.module
        import copy

        w, b = self.weight(), self.bias()
        clone = copy.deepcopy(self.module)
        with torch.no_grad():
            if isinstance(getattr(type(clone), "weight", None), property):
                raise InvalidTypeError(f"cannot fold BatchNorm into {type(clone).__name__} (its weight is computed)")
            clone.double()
            clone.weight.copy_(w)
            if clone.bias is None:
                clone.bias = nn.Parameter(b.clone())
            else:
                clone.bias.copy_(b)
        return clone

    def describe(self) -> str:
        """One line: name, kind, activation, folding and notes."""
        parts = [f"{self.name} ({self.kind}, {type(self.module).__name__})",
                 f"activation {self.act.describe() if self.act is not None else self.activation or 'none'}"]
        if self.batchnorm is not None:
            parts.append(f"BatchNorm {self.folded} folded")
        parts += list(self.notes)
        return "; ".join(parts)


@dataclass
class Discovery:
    """What ``discover`` found: the layers in execution order, the ReLU sites, the modules it skipped, and how.

    ``method`` is ``"trace"`` (torch.fx), ``"registration order"`` (the model
    did not trace) or ``"names"`` (``layers=`` given); ``skipped`` maps a
    qualified name to the reason it is not analysed; ``trace_error`` holds
    the tracing failure, if any. ``sites`` lists every place a ReLU-family or
    clipped activation is applied, with the affine branches that feed it
    (``relusv.torch.sites``, MATH.md section 10; traced models only);
    ``opaque`` maps the modules tracing cannot see inside to the reason.

    Attributes
    ----------
    layers : list of Layer
    method : str
    skipped, opaque : dict of str to str
    trace_error : str or None
    sites : list of activation sites
    graph : torch.fx.Graph or None
        The traced graph (traced models only).

    Examples
    --------
    >>> from torch import nn
    >>> from relusv.torch import discover
    >>> found = discover(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    >>> found.names(), [layer.name for layer in found.relu_layers()]
    (['0', '2'], ['0'])
    """

    layers: List[Layer]
    method: str
    skipped: Dict[str, str] = field(default_factory=dict)
    trace_error: Optional[str] = None
    sites: list = field(default_factory=list)
    opaque: Dict[str, str] = field(default_factory=dict)
    graph: Optional[torch.fx.Graph] = field(default=None, repr=False)

    def relu_layers(self, branches: bool = False) -> List[Layer]:
        """The weight layers whose output feeds a ReLU or leaky ReLU, in execution order; with ``branches``
        also the weight layers of the branches of multi-branch ReLU-family sites (a residual block's second
        convolution and its downsample: their output reaches the ReLU through the sum, MATH.md section 10)."""
        names = {layer.name for layer in self.layers if layer.relu}
        if branches:
            names |= {b.layers[0] for site in self.sites if site.activation.family == RELU_FAMILY
                      for b in site.branches if b.module is not None}
        return [layer for layer in self.layers if layer.name in names]

    def names(self) -> List[str]:
        return [layer.name for layer in self.layers]

    def __repr__(self) -> str:
        relu = sum(layer.relu for layer in self.layers)
        return (f"Discovery({len(self.layers)} layers, {relu} with ReLU, {len(self.sites)} activation sites, "
                f"by {self.method}" + (f", {len(self.skipped)} skipped" if self.skipped else "") + ")")


# -- tracing ---------------------------------------------------------------------------------------------

def _short_error(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:160]}"


class _Tracer(torch.fx.Tracer):
    """Keeps weight layers (DoubleLinear included) and BatchNorm as single nodes.

    A ``torch.nn`` module holding weight layers (``nn.TransformerEncoderLayer``)
    is traced through when it traces on its own; otherwise it stays one node
    and ``opaque`` records why (its weight layers are then hooked one by one).
    """

    def __init__(self, opaque: Optional[Dict[str, str]] = None):
        super().__init__()
        self.opaque = {} if opaque is None else opaque

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if layer_kind(m) is not None:
            return True
        if not super().is_leaf_module(m, qualname):
            return False
        if not any(layer_kind(c) is not None for c in m.modules()):
            return True
        if isinstance(m, nn.MultiheadAttention):
            self.opaque[qualname] = ("nn.MultiheadAttention reads its projection weights inside "
                                     "F.multi_head_attention_forward (no module call to trace or hook)")
            return True
        try:
            _Tracer().trace(m)
            return False
        except Exception as error:  # dynamic code (fast paths, checks on tensor values)
            self.opaque[qualname] = f"{type(m).__name__} does not trace with torch.fx ({_short_error(error)})"
            return True


def _trace(model: nn.Module, opaque: Optional[Dict[str, str]] = None) -> torch.fx.Graph:
    """The eval-mode graph of ``model`` (what relusv analyses: BatchNorm in its folded form), its in-place
    operations followed (``follow_in_place``); modes restored."""
    from ._layers import TrainingModes

    modes = TrainingModes(model)
    try:
        model.eval()
        graph = _Tracer(opaque).trace(model)
    finally:
        modes.restore()
    follow_in_place(graph, dict(model.named_modules()))
    return graph


_IN_PLACE_OPERATORS = (operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
                       operator.ipow, operator.imod, operator.iand, operator.ior, operator.ixor, operator.ilshift,
                       operator.irshift, operator.imatmul)


def _inplace_argument(target: Callable, args: tuple, kwargs: dict) -> bool:
    """Whether a call of ``target`` passes ``inplace=True`` (by keyword or by position, ``F.relu(x, True)``)."""
    if kwargs.get("inplace") is True:
        return True
    try:
        bound = inspect.signature(target).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return False
    return bound.arguments.get("inplace") is True


def mutated_argument(node: torch.fx.Node, modules: Dict[str, nn.Module]) -> Optional[torch.fx.Node]:
    """The node whose tensor ``node`` changes in place (its first argument), or None: a method with a trailing
    underscore (``h.add_(x)``, ``h.relu_()``), ``torch.relu_``-like functions, augmented operators
    (``operator.iadd``), ``inplace=True`` (``F.relu(h, inplace=True)``) and modules with ``inplace=True``."""
    if not node.args or not isinstance(node.args[0], torch.fx.Node):
        return None
    if node.op == "call_method":
        return node.args[0] if node.target.endswith("_") and not node.target.startswith("_") else None
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        torch_function = (getattr(node.target, "__module__", None) or "torch").startswith("torch")
        if (node.target in _IN_PLACE_OPERATORS or (torch_function and name.endswith("_") and not name.startswith("_"))
                or _inplace_argument(node.target, node.args, node.kwargs)):
            return node.args[0]
        return None
    if node.op == "call_module" and getattr(modules.get(node.target), "inplace", False) is True:
        return node.args[0]
    return None


def follow_in_place(graph: torch.fx.Graph, modules: Dict[str, nn.Module]) -> None:
    """Makes the graph's edges say what the model computes: after an operation that changes a tensor in place
    (``mutated_argument``), every later use of that tensor reads the changed value, which is the operation's
    result, so those uses are redirected to it. ``h.add_(x); relu(h)`` is then ``relu(h + x)``, and a skip
    connection that reads ``h`` after ``F.relu(h, inplace=True)`` reads the activation."""
    order = {node: position for position, node in enumerate(graph.nodes)}
    for node in list(graph.nodes):
        source = mutated_argument(node, modules)
        if source is None:
            continue
        for user in list(source.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(source, node)


def _node_module(node, modules: Dict[str, nn.Module]) -> Optional[nn.Module]:
    return modules.get(node.target) if node.op == "call_module" else None


def functional_batchnorm(node, modules: Dict[str, nn.Module]) -> Optional[Tuple[str, nn.Module]]:
    """``(name, module)`` whose running statistics a traced ``F.batch_norm`` call uses (a BatchNorm-plus-activation
    module traced through, such as timm's ``BatchNormAct2d``), or None."""
    if node.op != "call_function" or node.target is not nn.functional.batch_norm or len(node.args) < 3:
        return None
    mean, var = node.args[1], node.args[2]
    if not (isinstance(mean, torch.fx.Node) and mean.op == "get_attr" and isinstance(var, torch.fx.Node)
            and var.op == "get_attr"):
        return None
    owner, _, attr = mean.target.rpartition(".")
    module = modules.get(owner)
    if module is None or attr != "running_mean" or var.target != f"{owner}.running_var" or \
            getattr(module, "running_mean", None) is None or not hasattr(module, "eps"):
        return None
    training = node.kwargs.get("training", node.args[5] if len(node.args) > 5 else False)
    return None if training is not False else (owner, module)


def _classify(node, modules: Dict[str, nn.Module]):
    """What ``node`` does to its first input: ``("relu" | "leaky_relu", slope, act)``, ``("other", name, act)``
    (clipped and other activations), ``("batchnorm", name, module)``, ``("pass",)``, ``("reshape",)`` or
    ``("stop", description)``."""
    act = node_activation(node, modules)
    if act is not None:
        return (act.name, act.slope, act) if act.family == RELU_FAMILY else ("other", act.name, act)
    module = _node_module(node, modules)
    if module is not None:
        if isinstance(module, _BATCHNORMS) and module.track_running_stats:
            return ("batchnorm", node.target, module)
        if isinstance(module, _PASSTHROUGH):
            return ("pass",)
        return ("stop", f"feeds {node.target} ({type(module).__name__})")
    if node.op == "call_function":
        owner = functional_batchnorm(node, modules)
        if owner is not None:
            return ("batchnorm", owner[0], owner[1])
        if node.target in _RESHAPE_FUNCTIONS:
            return ("reshape",)
        return ("stop", f"feeds {getattr(node.target, '__name__', str(node.target))}")
    if node.op == "call_method":
        if node.target in _RESHAPE_METHODS:
            return ("reshape",)
        return ("stop", f"feeds .{node.target}()")
    return ("stop", "is the model's output" if node.op == "output" else f"feeds {node.op}")


@dataclass
class _Followed:
    act: Optional[Activation] = None
    node: Optional[str] = None
    batchnorm: Optional[Tuple[str, nn.Module]] = None
    notes: Tuple[str, ...] = ()


def _activation_note(act: Activation, among_others: bool) -> str:
    where = " among other operations" if among_others else ""
    if act.family == CLIPPED:
        return (f"followed by {act.describe()}{where}: a clipped activation, ReLU quantities computed with it "
                "(MATH.md section 10)")
    return f"followed by {act.name}{where}, not a ReLU: ReLU quantities not computed"


def _follow(node, modules: Dict[str, nn.Module]) -> _Followed:
    """Walks from a layer's node through BatchNorm / Dropout / reshapes to its activation."""
    found = _Followed()
    notes: List[str] = []
    current = node
    reshaped = False
    channels = modules[node.target].weight.shape[0]
    while True:
        users = list(current.users)
        if not users:
            return _Followed(None, None, found.batchnorm, tuple(notes + ["output unused"]))
        verdicts = [(u, _classify(u, modules)) for u in users]
        for user, v in verdicts:
            if v[0] in RELU_ACTIVATIONS:
                if len(users) > 1:
                    notes.append("its output also feeds other operations")
                return _Followed(v[2], user.name, found.batchnorm, tuple(notes))
        if len(users) == 1:
            user, v = verdicts[0]
            if v[0] == "batchnorm" and found.batchnorm is None and not reshaped and v[2].num_features == channels:
                found.batchnorm = (v[1], v[2])
                current = user
                continue
            if v[0] == "batchnorm":
                return _Followed(None, None, found.batchnorm, tuple(notes + [
                    f"no activation: feeds {v[1]}, a BatchNorm that cannot be folded into it"]))
            if v[0] in ("pass", "reshape"):
                reshaped = reshaped or v[0] == "reshape"
                current = user
                continue
            if v[0] == "other":
                return _Followed(v[2], user.name, found.batchnorm, tuple(notes + [_activation_note(v[2], False)]))
            return _Followed(None, None, found.batchnorm, tuple(notes + [f"no activation: {v[1]}"]))
        others = [(u, v) for u, v in verdicts if v[0] == "other"]
        if others:
            user, v = others[0]
            return _Followed(v[2], user.name, found.batchnorm, tuple(notes + [_activation_note(v[2], True)]))
        return _Followed(None, None, found.batchnorm, tuple(notes + ["no activation: output feeds several operations"]))


def _make_layer(name: str, module: nn.Module, kind: str, followed: _Followed) -> Layer:
    act, batchnorm, notes = followed.act, followed.batchnorm, followed.notes
    if batchnorm is not None and act is None:
        notes = notes + (f"BatchNorm {batchnorm[0]} not folded (no activation after it)",)
        batchnorm = None
    fn = act if act is not None and act.family != RELU_FAMILY else None
    return Layer(name, module, kind, None if act is None else act.name, 0.0 if act is None else act.slope,
                 batchnorm, notes, fn, act, followed.node)


def _opaque_layers(name: str, module: nn.Module, reason: str,
                   skipped: Dict[str, str]) -> List[Layer]:
    """The weight layers inside a module tracing cannot see into, hooked one by one.

    The ``linear1`` of a ``nn.TransformerEncoderLayer``-style module (``linear1``,
    ``linear2`` and an ``activation`` attribute; the opaque module itself or one
    inside it, as in a ``nn.TransformerEncoder``) is followed by that activation,
    as its forward computes ``linear2(dropout(activation(linear1(x))))``.
    """
    out: List[Layer] = []
    attention = set()
    for inner, m in module.named_modules():
        if isinstance(m, nn.MultiheadAttention):
            attention.update(f"{inner}.{c}" if inner else c for c, _ in m.named_modules() if c)
    for child, sub in module.named_modules():
        kind = layer_kind(sub)
        if not child or kind is None:
            continue
        full = f"{name}.{child}" if name else child
        if child in attention:
            skipped[full] = (f"inside {name} ({type(module).__name__}): {reason}; read as a weight by "
                             "F.multi_head_attention_forward, never called as a module: not analysed")
            continue
        note = f"inside {name} ({type(module).__name__}), which {reason.split(' ', 1)[-1]}: hooked individually"
        act = _feedforward_activation(module, child)
        if act is not None:
            out.append(_make_layer(full, sub, kind, _Followed(act, None, None, (
                note + f"; followed by its activation attribute ({act.name})",))))
        else:
            out.append(Layer(full, sub, kind, None, 0.0, None, (note + f"; {NOT_TRACED}",)))
    return out


def _feedforward_activation(module: nn.Module, child: str) -> Optional[Activation]:
    """The activation after ``child`` of ``module`` where ``child`` is the ``linear1`` of a feed-forward block
    (its parent has ``linear1``, ``linear2`` and an ``activation`` attribute); None elsewhere."""
    parent_name, _, leaf = child.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    known = getattr(parent, "activation", None)
    if leaf != "linear1" or known is None or not (hasattr(parent, "linear1") and hasattr(parent, "linear2")):
        return None
    return module_activation(known) if isinstance(known, nn.Module) else function_activation(known)


def _discover_traced(model: nn.Module, graph: torch.fx.Graph,
                     opaque: Dict[str, str]) -> Tuple[List[Layer], Dict[str, str]]:
    modules = dict(model.named_modules())
    calls: Dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    layers: List[Layer] = []
    skipped: Dict[str, str] = {}
    seen = set()
    for node in graph.nodes:
        module = _node_module(node, modules)
        if module is not None and node.target in opaque and node.target not in seen:
            seen.add(node.target)
            layers.extend(_opaque_layers(node.target, module, opaque[node.target], skipped))
            seen.update(name for name, _ in module.named_modules(prefix=node.target))
            continue
        kind = layer_kind(module) if module is not None else None
        if kind is None or node.target in seen:
            continue
        seen.add(node.target)
        if calls[node.target] > 1:
            skipped[node.target] = (f"called {calls[node.target]} times in forward: no row of its own (an activation after a "
                                    "call is analysed in that activation's site row)")
            continue
        layers.append(_make_layer(node.target, module, kind, _follow(node, modules)))
    # Weight modules the forward pass never calls.
    for name, module in modules.items():
        if name and layer_kind(module) is not None and name not in seen and name not in skipped:
            skipped[name] = "not called in forward"
    return layers, skipped


# -- registration order (models that do not trace) ---------------------------------------------------------

def _leaves(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Weight layers and childless modules in registration order, leaving out the insides of weight layers."""
    out: List[Tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        if not name or any(name.startswith(parent + ".") for parent, p in out if layer_kind(p) is not None):
            continue
        if layer_kind(m) is not None or not any(True for _ in m.children()):
            out.append((name, m))
    return out


def _discover_registered(model: nn.Module) -> List[Layer]:
    """Layers by registration order: a weight module, optional BatchNorm / Dropout, then an activation module."""
    leaves = _leaves(model)
    layers = []
    for i, (name, module) in enumerate(leaves):
        kind = layer_kind(module)
        if kind is None:
            continue
        batchnorm, act = None, None
        for nxt_name, nxt in leaves[i + 1:]:
            if isinstance(nxt, _BATCHNORMS) and batchnorm is None and nxt.track_running_stats:
                batchnorm = (nxt_name, nxt)
                continue
            if isinstance(nxt, _PASSTHROUGH):
                continue
            act = module_activation(nxt)
            break
        notes = ("found by registration order (the model does not trace with torch.fx, so activations applied as "
                 "functions, F.relu, are not seen)",)
        if act is not None and act.family != RELU_FAMILY:
            notes = notes + (_activation_note(act, False),)
        layers.append(_make_layer(name, module, kind, _Followed(act, None, batchnorm, notes)))
    return layers


# -- the entry point -------------------------------------------------------------------------------------------
