"""ReLU sites: every place a traced network applies a ReLU-family or clipped activation (MATH.md section 10).

A *site* is an activation node of the ``torch.fx`` graph. Its input ``z`` is
resolved backwards into a sum of affine branches

    z = sum_j A_j x_j + b,

each ``A_j`` a weight layer (``Linear`` / ``Conv2d``, grouped or not, and
``DoubleLinear`` / ``DoubleConv2d``) or the identity (a skip connection, or
any tensor the resolution stops at: a pooling, a concatenation, an
activation), times the per-channel scales of the BatchNorms applied after it
(eval form, MATH.md section 9); sums (``+``, ``torch.add``, ``+=``) add
branches, a BatchNorm after a sum scales every branch. Resolution stops at
the first weight layer of a branch, so ``x_j`` is that layer's input. The
site is then one layer ``phi(x) = act(A x + b)`` of the stacked input
``x = (x_1, ..., x_J)``, ``A = [A_1, ..., A_J]`` (``JointMap``):

- a ResNet basic block has two sites: ``conv1 -> bn1 -> relu`` (one branch)
  and ``relu(bn2(conv2(h)) + skip(x))`` (two branches: ``conv2`` with
  ``bn2`` folded on ``h``, and the identity or the folded ``downsample`` on ``x``);
- pre-activation orders (``BN -> ReLU -> conv``, DenseNet's
  ``relu(norm(cat(features)))``) are sites whose one branch is the folded
  BatchNorm, a diagonal ``A`` on the concatenated input (MATH.md section 10);
- a site whose input is not affine in earlier tensors (``relu(x * y)``)
  is the identity branch on that input: ``phi(z) = act(z)``.

Sites are named by the activation's qualified module name, with ``@i`` for
its ``i``-th extra call (the convention of ``torch.fx``'s module stack:
``layer1.0.relu`` and ``layer1.0.relu@1`` in a torchvision ``BasicBlock``,
which calls one ``nn.ReLU`` twice), or ``scope:function`` for a function
applied inside the module ``scope`` (``layer1.0:relu``).
"""
from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .._arrays import scale_exponent
from ..errors import InvalidInputError
from ._conv_geometry import block_diagonal_kernel, integer_padding
from ._graph import _BATCHNORMS, _PASSTHROUGH, Layer, batchnorm_parts, functional_batchnorm, layer_kind
from ._rows import RowStore
from .activations import CLIPPED, Activation, node_activation

MEMORY_FRACTION = 0.25
"""The joint patch matrix may take at most this fraction of the machine's physical memory."""


# -- branches and sites -------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Branch:
    """One affine branch ``A_j x_j`` of a site's input.

    ``input`` is the fx node name of ``x_j``; ``kind`` ``"conv2d"``,
    ``"linear"`` or ``"identity"``; ``layers`` the modules composing ``A_j``
    (the weight layer, then the BatchNorms folded after it); ``module`` the
    weight layer (None for the identity); ``scale`` the per-output-channel
    factor of the folded BatchNorms (float64; None for 1).
    """

    input: str
    kind: str
    layers: Tuple[str, ...] = ()
    module: Optional[nn.Module] = field(default=None, repr=False)
    scale: Optional[torch.Tensor] = field(default=None, repr=False)

    def describe(self) -> str:
        what = " -> ".join(self.layers) if self.module is not None else \
            ("identity" if not self.layers else "identity -> " + " -> ".join(self.layers))
        return f"{what} on the graph value {self.input}"


@dataclass(frozen=True, eq=False)
class Site:
    """One activation site: its name, activation, branches and bias (see the module documentation).

    ``reason`` is ``""`` when the input resolved to affine branches, else why
    the site has no joint map; ``layer`` names the discovered layer whose row
    already analyses this site (one weight-layer branch), else None; ``order``
    is the node's position in the graph.
    """

    name: str
    node: str
    activation: Activation
    branches: Tuple[Branch, ...]
    bias: Optional[torch.Tensor] = field(default=None, repr=False)
    reason: str = ""
    layer: Optional[str] = None
    order: int = 0

    @property
    def layers(self) -> Tuple[str, ...]:
        """The modules contributing to the site's affine map, in branch order."""
        return tuple(name for branch in self.branches for name in branch.layers)

    def describe(self) -> str:
        parts = [f"{self.name}: {self.activation.describe()} of " +
                 " + ".join(b.describe() for b in self.branches)]
        if self.reason:
            parts.append(self.reason)
        if self.layer is not None:
            parts.append(f"analysed in the row of {self.layer}")
        return "; ".join(parts)


@dataclass
class _Expr:
    branches: List[Branch]
    bias: Optional[torch.Tensor] = None
    reason: str = ""


def _add_bias(a: Optional[torch.Tensor], b: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    if a is None or b is None:
        return a if b is None else b
    if a.shape != b.shape:
        raise InvalidInputError(f"biases of {a.numel()} and {b.numel()} channels are added")
    return a + b


def _batchnorm(expr: _Expr, name: str, bn: nn.Module) -> _Expr:
    """``BN(sum_j A_j x_j + b)``: every branch scaled by ``gamma / sqrt(var + eps)``, the bias folded."""
    scale, mean, beta = batchnorm_parts(bn)
    branches = []
    for branch in expr.branches:
        if branch.module is not None and branch.module.weight.shape[0] != scale.numel():
            return _Expr(expr.branches, expr.bias, f"{name} has {scale.numel()} features but "
                         f"{branch.layers[0]} has {branch.module.weight.shape[0]} outputs")
        s = scale if branch.scale is None else scale * branch.scale
        branches.append(replace(branch, layers=branch.layers + (name,), scale=s))
    bias = expr.bias if expr.bias is not None else torch.zeros_like(mean)
    return _Expr(branches, scale * (bias - mean) + beta, expr.reason)


_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}


def _is_add(node) -> bool:
    if node.op == "call_function" and node.target in _ADD_FUNCTIONS:
        pass
    elif not (node.op == "call_method" and node.target in ("add", "add_")):
        return False
    return len(node.args) == 2 and not node.kwargs and all(isinstance(a, torch.fx.Node) for a in node.args)


def _resolve(node, modules: Dict[str, nn.Module], calls: Dict[str, int]) -> _Expr:
    """``node``'s value as a sum of affine branches (identity on ``node`` itself where nothing affine is seen)."""
    if node.op == "call_module":
        module = modules.get(node.target)
        kind = layer_kind(module) if module is not None else None
        if kind is not None:
            bias = getattr(module, "bias", None)
            return _Expr([Branch(node.args[0].name, kind, (node.target,), module)],
                         None if bias is None else bias.detach().double())
        if isinstance(module, _BATCHNORMS) and module.track_running_stats:
            return _batchnorm(_resolve(node.args[0], modules, calls), node.target, module)
        if isinstance(module, _PASSTHROUGH):
            return _resolve(node.args[0], modules, calls)
    elif node.op == "call_function":
        owner = functional_batchnorm(node, modules)
        if owner is not None:
            return _batchnorm(_resolve(node.args[0], modules, calls), owner[0], owner[1])
    if _is_add(node):
        left, right = (_resolve(a, modules, calls) for a in node.args)
        try:
            bias = _add_bias(left.bias, right.bias)
        except InvalidInputError as error:
            return _Expr([Branch(node.name, "identity")], None, str(error))
        return _Expr(left.branches + right.branches, bias, left.reason or right.reason)
    return _Expr([Branch(node.name, "identity")])


def branches_of_layer(layer: Layer) -> Tuple[List[Branch], Optional[torch.Tensor]]:
    """A discovered layer (BatchNorm folded) as one branch and its bias: ``(branches, bias)``."""
    bias = getattr(layer.module, "bias", None)
    expr = _Expr([Branch("input", layer.kind, (layer.name,), layer.module)],
                 None if bias is None else bias.detach().double())
    if layer.batchnorm is not None:
        expr = _batchnorm(expr, *layer.batchnorm)
    return expr.branches, expr.bias


def _scope(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    key = list(stack.keys())[-1]
    value = stack[key]
    path = value[0] if isinstance(value, tuple) else key
    return str(path).split("@")[0]


def find_sites(model: nn.Module, graph: torch.fx.Graph, layers: Sequence[Layer]) -> List[Site]:
    """Every ReLU-family or clipped activation site of the traced ``graph`` of ``model``, in graph order."""
    modules = dict(model.named_modules())
    covered = {layer.activation_node: layer.name for layer in layers if layer.activation_node is not None}
    calls: Dict[str, int] = {}
    names: Dict[str, int] = {}
    sites = []
    for order, node in enumerate(graph.nodes):
        act = node_activation(node, modules)
        if act is None or not act.bounded or not node.args or not isinstance(node.args[0], torch.fx.Node):
            continue
        if node.op == "call_module":
            base = node.target
        else:
            fname = getattr(node.target, "__name__", str(node.target))
            scope = _scope(node)
            base = f"{scope}:{fname}" if scope else fname
        count = names.get(base, 0)
        names[base] = count + 1
        name = base if count == 0 else f"{base}@{count}"
        expr = _resolve(node.args[0], modules, calls)
        owner = covered.get(node.name)
        single = len(expr.branches) == 1 and expr.branches[0].module is not None
        sites.append(Site(name, node.name, act, tuple(expr.branches), expr.bias, expr.reason,
                          owner if single else None, order))
    return sites


# -- capturing the branch inputs ---------------------------------------------------------------------------

class SiteTap(torch.fx.Interpreter):
    """Runs the traced graph and keeps, for the rows ``rows`` of each batch, the values of the ``wanted`` nodes.

    Module calls go through the modules themselves, so forward hooks fire as
    in ``model(x)``. Values are copied when computed (in-place activations
    later change nothing kept).
    """

    def __init__(self, model: nn.Module, graph: torch.fx.Graph, wanted: Sequence[str]):
        super().__init__(torch.fx.GraphModule(model, graph), garbage_collect_values=True)
        self.extra_traceback = False   # errors keep their own message (torch.fx would append the node and graph)
        self.wanted = set(wanted)
        self.rows: Optional[torch.Tensor] = None
        self.store = RowStore(0)   # sized by the caller once the chosen points are known
        self.shapes: Dict[str, tuple] = {}

    def run_node(self, n):
        out = super().run_node(n)
        if n.name in self.wanted and torch.is_tensor(out):
            self.shapes[n.name] = tuple(out.shape[1:])
            if self.rows is not None and self.rows.numel():
                self.store.keep(n.name, out.index_select(0, self.rows.to(out.device)))
        return out

    def arrays(self) -> Dict[str, np.ndarray]:
        return self.store.result()


def site_nodes(sites: Sequence[Site]) -> List[str]:
    """The fx nodes whose values the rows of ``sites`` need: every branch input and every activation output."""
    out: List[str] = []
    for site in sites:
        out.extend(branch.input for branch in site.branches)
        out.append(site.node)
    return list(dict.fromkeys(out))


# -- the joint map of a site --------------------------------------------------------------------------------

@dataclass
class _Piece:
    """One branch as a kernel matrix on its patches: ``rows(x)`` is ``(N P, cols)``, ``matrix`` ``(m, cols)``."""

    kind: str
    matrix: np.ndarray
    shape: Tuple[int, ...]                 # per-point input shape of x_j
    geometry: Optional[dict] = None        # stride, padding, dilation, padding_mode, kernel (conv2d)
    kernel: Optional[torch.Tensor] = None  # dense scaled kernel (conv2d), for the operator

    @property
    def pointwise(self) -> bool:
        """Whether each output position reads one input position (a ``1 x 1`` kernel without padding, an
        identity, a linear layer per position): the branch is its matrix on every position."""
        if self.geometry is None:
            return True
        return tuple(self.geometry["kernel_size"]) == (1, 1) and tuple(self.geometry["padding"]) == (0, 0)

    def norm_upper(self, seed: int) -> float:
        """A certified upper bound of ``||A_j||``: ``sigma_0`` of the matrix of a pointwise branch (exact, widened
        by ``ROUNDING`` for its float64 evaluation), the upper end of ``conv_operator_norm`` of a convolution."""
        from .conv_operator import ROUNDING, conv_operator_norm

        if self.pointwise:
            return spectral_norm(self.matrix) * (1 + ROUNDING)
        g = self.geometry   # the upper end comes before the iteration: one step of it suffices
        result = conv_operator_norm(self.kernel.numpy(), tuple(self.shape[1:]), stride=g["stride"],
                                    padding=g["padding"], dilation=g["dilation"], padding_mode=g["padding_mode"],
                                    seed=seed, max_iter=1)
        return float(result.upper)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, P, cols)``: the patches (conv), positions (tokens) or rows under each output position."""
        n = x.shape[0]
        if self.geometry is not None:
            from ._conv_geometry import pad_input

            g = self.geometry
            x, padding = pad_input(x, g["padding"], g["padding_mode"])
            p = nn.functional.unfold(x, g["kernel_size"], dilation=g["dilation"], padding=padding,
                                     stride=g["stride"])
            return p.transpose(1, 2)
        if len(self.shape) == 3 and self.kind == "identity-conv":
            return x.reshape(n, self.shape[0], -1).transpose(1, 2)
        return x.reshape(n, -1, self.matrix.shape[1])

    def apply(self, x: torch.Tensor, exponent: int = 0) -> torch.Tensor:
        """``2^-exponent A_j x`` in the output layout (no bias) in ``x``'s precision, for the operator norm."""
        if self.geometry is not None:
            from ._conv_geometry import pad_input

            g = self.geometry
            x, padding = pad_input(x, g["padding"], g["padding_mode"])
            return nn.functional.conv2d(x, self._weight(x.dtype, exponent), None, g["stride"], padding,
                                        g["dilation"])
        if self.kind == "identity-conv":     # a diagonal (scaled identity): one product per channel
            return x * self._weight(x.dtype, exponent).reshape(1, -1, 1, 1)
        w = self._weight(x.dtype, exponent)
        return x.reshape(x.shape[0], -1, w.shape[1]) @ w.T

    def _weight(self, dtype: torch.dtype, exponent: int = 0) -> torch.Tensor:
        """The kernel (conv2d), the diagonal (identity-conv) or the matrix times ``2^-exponent`` (exact) in
        ``dtype``, converted once."""
        cache = self.__dict__.setdefault("_converted", {})
        if (dtype, exponent) not in cache:
            if self.geometry is not None:
                value = self.kernel.numpy()
            elif self.kind == "identity-conv":
                value = np.ascontiguousarray(np.diag(self.matrix))
            else:
                value = self.matrix
            cache[(dtype, exponent)] = torch.from_numpy(np.ldexp(value, -exponent)).to(dtype)
        return cache[(dtype, exponent)]


def _piece(branch: Branch, shape: Tuple[int, ...], channels_first: bool) -> _Piece:
    scale = None if branch.scale is None else branch.scale.double().cpu()
    if branch.kind == "identity":
        channels_first = channels_first and len(shape) == 3
        c = shape[0] if channels_first else shape[-1]
        if scale is not None and scale.numel() != c:
            raise InvalidInputError(f"a BatchNorm of {scale.numel()} features on {branch.input} of {c} channels")
        eye = torch.eye(c, dtype=torch.float64) * (1 if scale is None else scale.reshape(-1, 1))
        return _Piece("identity-conv" if channels_first else "identity", eye.numpy(), shape)
    module = branch.module
    if branch.kind == "conv2d":
        kernel = block_diagonal_kernel(module.weight.detach().double().cpu(), int(getattr(module, "groups", 1)))
        if scale is not None:
            kernel = kernel * scale.reshape(-1, 1, 1, 1)
        geometry = {"stride": tuple(module.stride), "padding": integer_padding(module),
                    "dilation": tuple(module.dilation),
                    "padding_mode": module.padding_mode, "kernel_size": tuple(kernel.shape[2:])}
        return _Piece("conv2d", kernel.reshape(kernel.shape[0], -1).numpy(), shape, geometry, kernel)
    w = module.weight.detach().double().cpu()
    if scale is not None:
        w = w * scale.reshape(-1, 1)
    return _Piece("linear", w.numpy(), shape)


def spectral_norm(matrix: np.ndarray) -> float:
    """``sigma_0`` of a float64 matrix by the library's SVD (``relusv.singular_values``: a diagonal or
    block-diagonal matrix, e.g. a BatchNorm site's, by its blocks); 0 for an empty one."""
    from ..spectra import singular_values

    return float(singular_values(matrix)[0]) if matrix.size else 0.0


def _right_singular_vectors(z: np.ndarray) -> np.ndarray:
    """``Vt`` of the thin SVD of ``z``; a tall ``z`` (``N >= 2 m``) through the triangular factor of its QR, which
    has the same singular values and right singular vectors without the ``N x m`` left factor."""
    if z.shape[0] >= 2 * z.shape[1]:
        z = np.linalg.qr(z, mode="r")
    return np.linalg.svd(z, full_matrices=False)[2]


class JointMap:
    """``phi(x) = act(sum_j A_j x_j + b)`` of a site as one layer of the stacked inputs (MATH.md section 10).

    Each branch is a kernel matrix on its patches (a convolution's
    ``K_mat``, grouped convolutions as their block-diagonal dense kernel; the
    identity as the ``C x C`` identity on ``1 x 1`` patches; a linear layer on
    the last axis of its input, every other position a row: tokens); the
    branches must share the output grid, and the joint kernel matrix is
    ``W = [K_1,mat, K_2,mat, ...]`` on the concatenated patches, ``P``
    positions per point. ``s_k`` bounds are then those of MATH.md sections
    2-3 and 9 with rank-``k`` approximants of ``W`` as a whole (for a grouped
    convolution: approximants of any structure, not block diagonal).

    Parameters
    ----------
    branches : sequence of Branch
    bias : tensor or None
        Per output channel (float64).
    activation : Activation
        ReLU family or clipped.
    shapes : sequence of tuple
        Per-point shape of each branch input.
    """

    def __init__(self, branches: Sequence[Branch], bias: Optional[torch.Tensor], activation: Activation,
                 shapes: Sequence[Tuple[int, ...]]):
        if not activation.bounded:
            raise InvalidInputError(f"{activation.name} is neither a ReLU nor a clipped activation")
        if len(branches) != len(shapes) or not branches:
            raise InvalidInputError("one input shape per branch is needed")
        self.activation = activation
        kinds = {b.kind for b in branches}
        # identities follow the weight branches' layout: channels first beside convolutions (and for
        # (C, H, W) inputs alone), the last axis beside linear layers (tokens, channels-last features)
        channels_first = "conv2d" in kinds or (kinds == {"identity"} and all(len(s) == 3 for s in shapes))
        self.pieces = [_piece(b, tuple(s), channels_first) for b, s in zip(branches, shapes)]
        heights = {p.matrix.shape[0] for p in self.pieces}
        if len(heights) != 1:
            raise InvalidInputError(f"the branches have different numbers of output channels: {sorted(heights)}")
        self.matrix = np.hstack([p.matrix for p in self.pieces])
        m = self.matrix.shape[0]
        self.bias = np.zeros(m) if bias is None else bias.double().cpu().numpy().reshape(-1)
        if self.bias.size != m:
            raise InvalidInputError(f"the bias has {self.bias.size} entries for {m} output channels")
        self.sizes = [int(np.prod(s)) for s in shapes]
        self.conv = any(p.kind in ("conv2d", "identity-conv") for p in self.pieces)
        if self.conv and not all(p.kind in ("conv2d", "identity-conv") for p in self.pieces):
            raise InvalidInputError("the branches mix convolutions with linear layers")
        probe = [p.patches(torch.zeros(1, *p.shape, dtype=torch.float64)).shape[1] for p in self.pieces]
        if len(set(probe)) != 1:
            raise InvalidInputError(f"the branches do not share the output grid (positions {probe})")
        self.positions = int(probe[0])

    # -- data ---------------------------------------------------------------------------------------------

    def split(self, points: np.ndarray) -> List[torch.Tensor]:
        """The stacked inputs (rows: points, flattened and concatenated) split into the branch inputs."""
        x = np.asarray(points, dtype=np.float64).reshape(points.shape[0], -1)
        if x.shape[1] != sum(self.sizes):
            raise InvalidInputError(f"points have {x.shape[1]} values, the branches take {sum(self.sizes)}")
        out, start = [], 0
        for piece, size in zip(self.pieces, self.sizes):
            out.append(torch.from_numpy(np.ascontiguousarray(x[:, start:start + size])).reshape(-1, *piece.shape))
            start += size
        return out

    def rows(self, points: np.ndarray) -> np.ndarray:
        """``(N P, cols)``: the concatenated patches, point by point (``P`` consecutive rows per point).

        The last result is kept for the same ``points`` object (the data rank and the bounds of one set)."""
        cached = getattr(self, "_cached", None)
        if cached is not None and cached[0] is points:
            return cached[1]
        out = self._rows(points)
        self._cached = (points, out)
        return out

    def _rows(self, points: np.ndarray) -> np.ndarray:
        n = points.shape[0]
        cols = self.matrix.shape[1]
        needed = 8.0 * n * self.positions * cols
        if needed > MEMORY_FRACTION * float(os_physical_memory()):
            raise InvalidInputError(f"the patches of {n} points ({n} x {self.positions} rows of {cols}) need "
                                    f"{needed / 2**30:.1f} GiB, more than a quarter of this machine's memory")
        with torch.no_grad():
            parts = [p.patches(x) for p, x in zip(self.pieces, self.split(points))]
            return torch.cat(parts, dim=2).reshape(n * self.positions, cols).numpy()

    def data_rank(self, points: np.ndarray) -> int:
        """``rank`` of the patch pre-activations ``rows W^T`` (``relusv.numerical_rank``): ``s_k = 0`` for every
        ``k`` at or above it, with any activation (``L = W P_X`` reproduces every pre-activation; MATH.md
        sections 2, 9)."""
        from .. import numerical_rank

        r = self.rows(points)
        return numerical_rank(r @ self.matrix.T) if r.size else 0

    def at_zero(self, dimension: Optional[int] = None) -> np.ndarray:
        """``phi(0) = act(b)`` in the output layout of one point: channel-major ``(C, H, W)`` for convolutions,
        position-major ``(..., m)`` for linear layers (tokens)."""
        value = self.activation.numpy(self.bias)
        count = self.positions if dimension is None else dimension // value.size
        return np.repeat(value, count) if self.conv else np.tile(value, count)

    # -- bounds ---------------------------------------------------------------------------------------------

    def __call__(self, points: np.ndarray, ks: Sequence[int], seed: int, options: dict):
        """Certified bounds of ``s_k(phi; X)`` at ``ks`` over ``points`` (a ``ReluSpectrum``, see ``bounds``)."""
        return self.bounds(points, ks, seed=seed, **options)

    def bounds(self, points: np.ndarray, ks: Sequence[int], seed: Optional[int] = 0, **options: Any):
        """Certified upper bounds of ``s_k(phi; X) = min_{rank L <= k} max_x ||phi(x) - act(L x + b)||``.

        For the ReLU family: ``relusv.relu_singular_values(W, b, rows, ks, group_size=P)`` (every bound the
        exact error of its factors). For a clipped activation (``ReLU6``): the same engine proposes factors
        (fitted for ReLU) and every candidate is evaluated here in float64 with the clipped activation: the
        truncated SVD ``W_k`` (``truncation_bound``), the reduced-rank regression ``Q_k Q_k^T W`` of the patch
        pre-activations, the engine's approximant, and the previous ``k``'s best; ``k = 0`` is the exact
        ``max_x ||act(A x + b) - act(b)||``. ``factors`` always holds ``(U, V)`` with ``L = U V`` per ``k``;
        ``data_max_norm`` is the radius of the points, ``max_x (sum_p ||pi_p(x)||^2)^(1/2)``.
        """
        from .. import relu_singular_values as engine

        rows = self.rows(points)
        self._cached = None          # kept from data_rank for this call only
        options = {"progress": False, **options}
        want_factors = True
        if self.activation.family == CLIPPED:
            options["return_factors"] = True
            spectrum = engine(self.matrix, self.bias, rows, ks, seed=seed, group_size=self.positions, **options)
            spectrum = self._clipped(rows, spectrum, options.get("weight_svd"))
        else:
            options["return_factors"] = want_factors
            spectrum = engine(self.matrix, self.bias, rows, ks, seed=seed, group_size=self.positions,
                              leaky_slope=self.activation.slope, **options)
        radius = float(np.sqrt(np.square(rows).sum(1).reshape(-1, self.positions).sum(1)).max())
        return replace(spectrum, data_max_norm=radius)

    def error(self, rows: np.ndarray, u: np.ndarray, v: Optional[np.ndarray], exact: Optional[np.ndarray] = None,
              coordinates: Optional[np.ndarray] = None) -> float:
        """``max_x ||act(W pi(x) + b) - act(U V pi(x) + b)||`` over the points (float64, grouped by ``P``);
        ``exact``: ``act(W pi(x) + b)`` already computed for these rows; ``coordinates``: in place of
        ``rows @ V^T`` (``v`` then unused), a product equal to it in exact arithmetic, such as
        ``(rows @ W^T) @ Q`` for ``V = Q^T W``: the value then agrees with ``error(rows, u, v)`` to rounding."""
        act = self.activation.numpy
        if exact is None:
            exact = act(rows @ self.matrix.T + self.bias)
        if not u.shape[1]:
            approx = act(np.broadcast_to(self.bias, exact.shape))
        else:
            approx = act((rows @ v.T if coordinates is None else coordinates) @ u.T + self.bias)
        per_point = np.square(exact - approx).sum(1).reshape(-1, self.positions).sum(1)
        return float(np.sqrt(per_point.max()))

    @functools.cached_property
    def _weight_svd(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The thin SVD of ``W`` (float64, ``relusv.truncated_svd``: a grouped convolution's block-diagonal
        kernel matrix by its blocks), shared by the curves over every set of points."""
        from .. import truncated_svd

        return truncated_svd(self.matrix, min(self.matrix.shape))

    def _clipped(self, rows: np.ndarray, spectrum, shared: Any = None):
        """Every candidate re-evaluated with the clipped activation (see ``bounds``). The candidates are
        compared on the points' coordinates along their right factors from two products made once per curve,
        ``rows @ Vt_W^T`` (the truncated SVD's) and ``Z = rows @ W^T`` (the regression's:
        ``rows @ (Q_k^T W)^T = Z Q_k``); the one chosen at each ``k`` is evaluated again from its factors
        (``error(rows, U, V)``), the value reported, and the previous ``k``'s best keeps that value. The
        truncated SVD's pairs come from ``shared`` (the curve's ``relusv.WeightSVD`` of ``W``, which the
        engine has checked) where it is given, else from ``_weight_svd``."""
        w = self.matrix
        ks = np.asarray(spectrum.ks, dtype=np.int64)
        kmax = int(ks.max(initial=0))
        u_w, s_w, vt_w = self._weight_svd if shared is None else shared.factors(kmax)
        z = rows @ w.T
        along_w = rows @ vt_w[:kmax].T
        vt_z = _right_singular_vectors(z)
        exact = self.activation.numpy(z + self.bias)
        bounds, truncation, sources, factors = [], [], [], []
        best = None
        for i, k in enumerate(ks):
            k = int(k)
            q = vt_z[:k].T
            fu, fv = (np.asarray(f, np.float64) for f in spectrum.factors[i])
            u_k = u_w[:, :k] * s_w[:k]
            scored = [(self.error(rows, u_k, None, exact, along_w[:, :k]), "svd", (u_k, vt_w[:k])),
                      (self.error(rows, q, None, exact, z @ q), "rrr", (q, None)),
                      (self.error(rows, fu, fv, exact), f"{spectrum.source[i]} (ReLU fit)", (fu, fv))]
            if best is not None:
                scored.append((best[0], "previous-k", best[1]))
            t_k = scored[0][0]
            value, name, (u, v) = min(scored, key=lambda c: c[0])
            if name in ("svd", "rrr"):
                v = q.T @ w if v is None else v
                value = self.error(rows, u, v, exact)
                t_k = value if name == "svd" else t_k
            best = (value, (u, v))
            bounds.append(value)
            truncation.append(t_k)
            sources.append("exact" if k == 0 else name)
            factors.append((u, v))
        return replace(spectrum, bound=np.asarray(bounds), truncation_bound=np.asarray(truncation), source=sources,
                       factors=factors)

    # -- the linear operator ---------------------------------------------------------------------------------

    def operator_norm(self, seed: int = 0, iterations: Optional[int] = None, tol: Optional[float] = None
                      ) -> Tuple[float, float, str]:
        """``(upper, lower, method)``: ``lower <= ||A|| <= upper`` for the joint linear map ``x -> sum_j A_j x_j``
        on the stacked input (MATH.md sections 9 and 10).

        Exact (both ends widened by ``ROUNDING``, relative ``1e-10``, for the
        float64 evaluation), ``sigma_0(W)`` of the joint matrix, where every branch reads one
        input position per output position: linear layers and identities (any
        number of positions), ``1 x 1`` convolutions without padding (any
        stride) and identities beside convolutions; ``A`` is then ``W`` on every
        output position, on disjoint coordinates of the input. Otherwise a
        bracket. From below: restarted Lanczos on ``A^T A`` (``A^T`` by
        autograd; the iteration in float32 unless ``tol < 1e-5``;
        ``relusv.torch.conv_operator``'s ``_lanczos``) from a seeded Gaussian
        start, until the top Ritz pair's relative residual is at most ``tol``
        or after ``iterations`` applications of ``A^T A`` (defaults: those of
        ``conv_operator_norm``, ``1e-3`` and 60), the value ``||A y||`` of the
        unit Ritz vector ``y`` evaluated in float64 (the operator attains it).
        From above: ``||[A_1, ..., A_J]||^2 = ||sum_j A_j A_j^T|| <= sum_j ||A_j||^2``
        with each branch's certified upper end (``conv_operator_norm`` of a
        convolution, ``sigma_0`` of a pointwise branch's matrix).
        """
        from .conv_operator import DEFAULT_MAX_ITER, DEFAULT_TOL, ROUNDING, _gram, _lanczos

        if not self.conv or all(p.pointwise for p in self.pieces):
            value = spectral_norm(self.matrix)
            return value * (1 + ROUNDING), value * (1 - ROUNDING), "exact"

        tol = DEFAULT_TOL if tol is None else float(tol)
        iterations = DEFAULT_MAX_ITER if iterations is None else int(iterations)

        generator = torch.Generator().manual_seed(int(seed))
        start = torch.cat([torch.randn(1, *p.shape, generator=generator).reshape(1, -1) for p in self.pieces], 1)
        # the iteration runs on 2^-e A (exact scaling), its largest entry in [1/2, 1): float32 neither
        # overflows (entries of 1e30: A^T A v beyond float32's range) nor underflows; the value is scaled back
        exponent = scale_exponent(self.matrix)
        forward = functools.partial(self._stacked_apply, exponent=exponent)
        gram = _gram(forward)
        if tol >= 1e-5:      # iterate in float32 (fast convolutions); the value is measured in float64
            single = _gram(forward)
            gram = lambda v: single(v.float()).double()   # noqa: E731
        lower, _, steps = _lanczos(forward, start.double(), float("inf"), tol, int(iterations), gram=gram,
                                   ritz_tol=tol)
        lower = float(np.ldexp(lower, exponent)) * (1 - ROUNDING)
        upper = max(float(np.sqrt(sum(p.norm_upper(seed) ** 2 for p in self.pieces))) * (1 + ROUNDING), lower)
        gap = (upper - lower) / upper if upper > 0 else 0.0
        return upper, lower, (f"bracket (Lanczos on the joint map from below, {steps} applications of A^T A; "
                              f"the branches' norms from above), gap {gap:.1e}")

    def _stacked_apply(self, v: torch.Tensor, exponent: int = 0) -> torch.Tensor:
        """``2^-exponent A v`` for the stacked input ``v`` (``(1, sum of sizes)``), in ``v``'s precision."""
        parts = torch.split(v.reshape(-1), self.sizes)
        return sum(p.apply(part.reshape(1, *p.shape), exponent) for p, part in zip(self.pieces, parts))


def os_physical_memory() -> float:
    import os

    return float(os.sysconf("SC_PHYS_PAGES")) * float(os.sysconf("SC_PAGE_SIZE"))
