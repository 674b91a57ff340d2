"""A ReLU MLP as plain NumPy arrays: loading from .npz or PyTorch, and the forward pass.

The network is ``x -> L_{D-1}(ReLU(... ReLU(L_0 x)))`` with affine layers
``L_i(x) = W_i x + b_i``, ``W_i`` of shape ``(out, in)`` as ``nn.Linear.weight``.
Every layer but the last is followed by a ReLU (the hidden layers); the last
gives the logits, and the prediction is their argmax.

Two file formats are read:

- NumPy ``.npz`` with arrays ``W0, b0, W1, b1, ...`` (``b_i`` optional, zero
  when absent); other arrays are ignored. Needs no torch.
- The ``state_dict`` of such an MLP, or an ``nn.Sequential`` chain of
  ``Linear`` / ``DoubleLinear`` / ``ReLU`` (``network_from_module``;
  ``Flatten``, ``Identity`` and ``Dropout`` are skipped: they are the
  identity on flat inputs in eval mode). ``source`` reads the files.

The NumPy form serves one-shot harmonic pruning of chains; every other
number of the report comes from ``relusv.torch.analyze`` on the torch module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._npyfile import check_npz_member
from .errors import ReportInputError

LAYER_NAME = "fc{}"
"""The name of layer ``i`` of a ``Network`` (``W{i}`` in a .npz) wherever the report shows or builds it."""


@dataclass(frozen=True)
class Layer:
    """One affine layer ``x -> W x + b``, followed by a ReLU when ``relu``.

    ``factors`` holds ``(W1, W2)`` with ``W = W1 @ W2`` for a double layer
    (MATH.md section 7), else ``None``.
    """

    weight: np.ndarray
    bias: np.ndarray
    relu: bool
    factors: Optional[Tuple[np.ndarray, np.ndarray]] = None

    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(self.weight.shape)  # type: ignore[return-value]

    @property
    def parameters(self) -> int:
        """Stored parameters: ``m n + m``, or ``r (m + n) + m`` for a double layer."""
        m, n = self.shape
        if self.factors is not None:
            return int(self.factors[0].size + self.factors[1].size + m)
        return m * n + m


@dataclass(frozen=True)
class Network:
    """A ReLU MLP: ``layers[i]`` maps the output of ``layers[i-1]`` (or the input)."""

    layers: Tuple[Layer, ...]

    @property
    def input_dimension(self) -> int:
        return self.layers[0].shape[1]

    @property
    def classes(self) -> int:
        return self.layers[-1].shape[0]

    @property
    def parameters(self) -> int:
        return sum(layer.parameters for layer in self.layers)

    def activations(self, x: np.ndarray, weights: Optional[Sequence[np.ndarray]] = None) -> List[np.ndarray]:
        """``[x, h_1, ..., h_D]``: the input, each layer's output (after its ReLU), the logits last.

        ``weights`` replaces the layers' weights (same shapes), e.g. by truncations.
        """
        outs = [np.asarray(x, dtype=np.float64)]
        for i, layer in enumerate(self.layers):
            w = layer.weight if weights is None else weights[i]
            z = outs[-1] @ w.T + layer.bias
            outs.append(np.maximum(z, 0.0) if layer.relu else z)
        return outs

    def predict(self, x: np.ndarray, weights: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
        return self.activations(x, weights)[-1].argmax(axis=1)


def network_from_arrays(weights: Sequence[np.ndarray], biases: Sequence[Optional[np.ndarray]],
                        relus: Optional[Sequence[bool]] = None,
                        factors: Optional[Sequence[Optional[Tuple[np.ndarray, np.ndarray]]]] = None,
                        source: str = "the model") -> Network:
    """Validate shapes and values and build a ``Network`` (arrays become float64).

    Raises ``ReportInputError`` naming the first problem: a weight that is not
    2-D, a bias of the wrong length, non-finite values, or consecutive layers
    whose shapes do not chain (``W_{i+1}.shape[1] != W_i.shape[0]``).
    """
    if len(weights) == 0:
        raise ReportInputError(f"{source} has no linear layers")
    relus = [i < len(weights) - 1 for i in range(len(weights))] if relus is None else list(relus)
    factors = [None] * len(weights) if factors is None else list(factors)
    layers = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        w = np.asarray(w)
        if w.ndim != 2 or 0 in w.shape:
            raise ReportInputError(f"{source}: weight of layer {i} must be a non-empty 2-D (out x in) array, "
                                   f"got shape {w.shape}")
        if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
            raise ReportInputError(f"{source}: weight of layer {i} must be real, got dtype {w.dtype}")
        w = w.astype(np.float64)
        b = np.zeros(w.shape[0]) if b is None else np.asarray(b)
        if b.shape != (w.shape[0],):
            raise ReportInputError(f"{source}: bias of layer {i} has shape {b.shape}, expected ({w.shape[0]},) "
                                   f"to match its weight {w.shape}")
        b = b.astype(np.float64)
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ReportInputError(f"{source}: layer {i} contains NaN or infinity")
        if layers and layers[-1].shape[0] != w.shape[1]:
            raise ReportInputError(f"{source}: shape mismatch between consecutive layers: layer {i - 1} has "
                                   f"{layers[-1].shape[0]} outputs but layer {i} expects {w.shape[1]} inputs "
                                   f"(weights {layers[-1].shape} and {w.shape})")
        pair = None
        if factors[i] is not None:
            pair = (np.asarray(factors[i][0], dtype=np.float64), np.asarray(factors[i][1], dtype=np.float64))
        layers.append(Layer(w, b, bool(relus[i]), pair))
    if layers[-1].shape[0] < 2:
        raise ReportInputError(f"{source}: the last layer has {layers[-1].shape[0]} output; a classifier needs "
                               "at least 2 (one logit per class)")
    return Network(tuple(layers))


_NPZ_WEIGHT = re.compile(r"^W(\d+)$")


def load_npz_network(path: Path) -> Network:
    """A network from ``W0, b0, W1, b1, ...`` in a ``.npz`` file."""
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises several types for unreadable files
        raise ReportInputError(f"cannot read {path} as a NumPy .npz file: {error}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ReportInputError(f"{path} is a single array; a model .npz needs arrays W0, b0, W1, b1, ...")
    with archive:
        names = archive.files
        indices = sorted(int(m.group(1)) for m in map(_NPZ_WEIGHT.match, names) if m)
        if not indices:
            raise ReportInputError(f"{path} has no weight arrays W0, W1, ... (found: {', '.join(names) or 'none'})")
        if indices != list(range(len(indices))):
            missing = sorted(set(range(max(indices) + 1)) - set(indices))
            raise ReportInputError(f"{path}: weights must be numbered W0, W1, ... without gaps; "
                                   f"missing W{missing[0]}")
        extra_biases = [n for n in names if re.match(r"^b\d+$", n) and int(n[1:]) not in indices]
        if extra_biases:
            raise ReportInputError(f"{path}: bias {extra_biases[0]} has no weight W{extra_biases[0][1:]}")
        for key in [f"W{i}" for i in indices] + [f"b{i}" for i in indices if f"b{i}" in names]:
            check_npz_member(archive, key, f"{path}: array {key}")
        try:
            weights = [archive[f"W{i}"] for i in indices]
            biases = [archive[f"b{i}"] if f"b{i}" in names else None for i in indices]
        except Exception as error:  # object arrays (pickle refused), bad CRC, corrupt deflate streams
            raise ReportInputError(f"cannot read {path}: {error}") from None
    return network_from_arrays(weights, biases, source=str(path))


def network_from_module(module, source: str) -> Optional[Network]:
    """The module as a NumPy ``Network`` when it is a chain of ``Linear`` / ``DoubleLinear`` / ``ReLU``
    (``Flatten``, ``Identity``, ``Dropout`` skipped) ending in logits; ``None`` for any other architecture."""
    try:
        return _chain(module, source)
    except ReportInputError:
        return None


def _chain(module, source: str) -> Network:
    from torch import nn

    flat: list = []

    def walk(m):
        if isinstance(m, nn.Sequential):
            for child in m.children():
                walk(child)
        else:
            flat.append(m)

    walk(module)
    weights, biases, relus, factors = [], [], [], []
    for m in flat:
        if isinstance(m, nn.ReLU):
            if not weights or relus[-1]:
                raise ReportInputError(f"{source}: a ReLU must follow a linear layer (found a ReLU at the start "
                                       "or two in a row)")
            relus[-1] = True
        elif isinstance(m, (nn.Flatten, nn.Identity, nn.Dropout)):
            continue
        elif isinstance(m, nn.Linear):
            weights.append(m.weight.detach().cpu().double().numpy())
            biases.append(None if m.bias is None else m.bias.detach().cpu().double().numpy())
            relus.append(False)
            factors.append(None)
        elif type(m).__name__ == "DoubleLinear" and hasattr(m, "weight"):
            weights.append(m.weight.detach().cpu().double().numpy())
            bias = getattr(m, "bias", None)
            biases.append(None if bias is None else bias.detach().cpu().double().numpy())
            relus.append(False)
            pair = _double_factors(dict(m.named_parameters()))
            factors.append(pair)
        else:
            raise ReportInputError(f"{source}: unsupported module {type(m).__name__}; relusv reports on MLPs made "
                                   "of Linear / DoubleLinear / ReLU")
    if relus and relus[-1]:
        raise ReportInputError(f"{source}: the last layer is followed by a ReLU; the report expects logits "
                               "from a final Linear layer")
    return network_from_arrays(weights, biases, relus, factors, source=source)


def _double_factors(params: Dict[str, object]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """``(W1, W2)`` of a double layer: the two 2-D parameters whose product chains."""
    mats = [(k, v) for k, v in params.items() if getattr(v, "ndim", 0) == 2]
    if len(mats) != 2:
        return None
    (_, a), (_, b) = mats
    a = a.detach().cpu().double().numpy() if hasattr(a, "detach") else np.asarray(a, dtype=np.float64)
    b = b.detach().cpu().double().numpy() if hasattr(b, "detach") else np.asarray(b, dtype=np.float64)
    if a.shape[1] == b.shape[0]:
        return a, b
    if b.shape[1] == a.shape[0]:
        return b, a
    return None


def network_from_state_dict(state: dict, source: str) -> Network:
    """An MLP from the weights (or factor pairs) and biases of a state dict, a ReLU between consecutive layers."""
    groups: Dict[str, Dict[str, object]] = {}
    for key, value in state.items():
        prefix, _, name = str(key).rpartition(".")
        groups.setdefault(prefix, {})[name] = value
    weights, biases, factors = [], [], []
    for prefix, params in groups.items():
        label = prefix or "(top level)"
        if "weight" in params:
            w = params["weight"]
            w = w.detach().cpu().double().numpy() if hasattr(w, "detach") else np.asarray(w)
            pair = None
        else:
            pair = _double_factors(params)
            if pair is None:
                raise ReportInputError(f"{source}: entry {label} has neither 'weight' nor two chaining factor "
                                       f"matrices (keys: {', '.join(params)})")
            w = pair[0] @ pair[1]
        b = params.get("bias")
        b = None if b is None else (b.detach().cpu().double().numpy() if hasattr(b, "detach") else np.asarray(b))
        weights.append(w)
        biases.append(b)
        factors.append(pair)
    return network_from_arrays(weights, biases, factors=factors, source=source)


