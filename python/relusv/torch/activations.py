"""What an activation of a traced graph computes: its real function, and how relusv treats it.

Every activation found in a ``torch.fx`` graph (module or function) is named
by the function it applies (``relu``, ``leaky_relu``, ``relu6``,
``hardtanh``, ``clamp``, ``silu``, ``gelu``, ``tanh``, ...) and falls in one
of three families:

- ``"relu"``: ReLU and leaky ReLU (slope in ``[0, 1)``), nonnegatively
  homogeneous (MATH.md section 1): every ReLU quantity applies as is;
- ``"clipped"``: ``clamp(z, low, high)`` with ``ReLU6 = clamp(., 0, 6)``,
  ``hardtanh(z, a, b) = clamp(z, a, b)`` and ``torch.clamp`` with numeric
  limits. 1-Lipschitz, so every rank-``k`` approximant gives a valid bound of
  the quantity with the clipped activation in place of ReLU; ``s_0``, the
  candidates' errors and the zero rules are evaluated with the clipped
  activation itself (MATH.md section 10, clipped activations);
- ``"other"``: any other function (SiLU, GELU, Tanh, ...): widths are
  measured after it, ReLU quantities are not computed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np
import torch
from torch import nn

from .. import _validation
from ..errors import InvalidInputError

RELU_FAMILY, CLIPPED, OTHER = "relu", "clipped", "other"


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: its name, family and parameters.

    ``slope`` is a leaky ReLU's negative slope; ``low`` / ``high`` the limits
    of a clipped activation (``-inf`` / ``inf`` where there is none);
    ``fn`` computes any other activation (a module or a function of one tensor).
    """

    name: str
    family: str
    slope: float = 0.0
    low: float = -math.inf
    high: float = math.inf
    fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = field(default=None, compare=False, repr=False)

    @property
    def bounded(self) -> bool:
        """True when ReLU quantities are computed (ReLU family and clipped activations)."""
        return self.family in (RELU_FAMILY, CLIPPED)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """The activation of ``z`` (never in place)."""
        if self.family == RELU_FAMILY:
            return nn.functional.leaky_relu(z, self.slope) if self.slope else torch.relu(z)
        if self.family == CLIPPED:
            return torch.clamp(z, None if math.isinf(self.low) else self.low,
                               None if math.isinf(self.high) else self.high)
        return self.fn(z.clone()) if self.fn is not None else z

    def numpy(self, z: np.ndarray) -> np.ndarray:
        """The activation of a NumPy array (ReLU family and clipped activations only)."""
        if self.family == RELU_FAMILY:
            return np.where(z > 0, z, self.slope * z)
        if self.family == CLIPPED:
            return np.clip(z, self.low, self.high)
        raise InvalidInputError(f"{self.name} has no NumPy form in relusv")

    def describe(self) -> str:
        if self.family == CLIPPED:
            return f"{self.name} (clamp to [{self.low:g}, {self.high:g}])"
        if self.name == "leaky_relu":
            return f"leaky_relu (slope {self.slope:g})"
        return self.name


RELU = Activation("relu", RELU_FAMILY)


def _leaky(slope: float) -> Activation:
    """A leaky ReLU: of the ReLU family for a slope in ``[0, 1)`` (MATH.md section 1), else another
    activation (a negative slope or one of 1 or more is not nonnegatively homogeneous in the same way: widths
    are measured after it, ReLU quantities are not computed)."""
    slope = float(slope)
    if _validation.relu_family_slope(slope):
        return Activation("leaky_relu", RELU_FAMILY, slope=slope)
    return Activation("leaky_relu", OTHER, slope=slope, fn=lambda z: nn.functional.leaky_relu(z, slope))


def _clip(name: str, low: Optional[float], high: Optional[float]) -> Activation:
    low = -math.inf if low is None else float(low)
    high = math.inf if high is None else float(high)
    if low == 0.0 and math.isinf(high):
        return Activation(name if name != "clamp" else "relu", RELU_FAMILY)
    return Activation(name, CLIPPED, low=low, high=high)


def _argument(node, position: int, name: str, default):
    if name in node.kwargs:
        return node.kwargs[name]
    if len(node.args) > position:
        return node.args[position]
    return default


def _numeric(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


_RELU_FUNCTIONS = {torch.relu, torch.relu_, nn.functional.relu, nn.functional.relu_}
_LEAKY_FUNCTIONS = {nn.functional.leaky_relu, nn.functional.leaky_relu_}
_HARDTANH_FUNCTIONS = {nn.functional.hardtanh, nn.functional.hardtanh_}
_RELU6_FUNCTIONS = {nn.functional.relu6}
_CLAMP_FUNCTIONS = {torch.clamp, torch.clip, torch.clamp_}
_CLAMP_METHODS = {"clamp", "clamp_", "clip", "clip_"}
OTHER_FUNCTIONS: Dict[Callable, str] = {
    nn.functional.gelu: "gelu", torch.tanh: "tanh", torch.sigmoid: "sigmoid", nn.functional.silu: "silu",
    nn.functional.elu: "elu", nn.functional.selu: "selu", nn.functional.softplus: "softplus",
    nn.functional.mish: "mish", nn.functional.softmax: "softmax", nn.functional.log_softmax: "log_softmax",
    nn.functional.tanh: "tanh", nn.functional.sigmoid: "sigmoid", nn.functional.hardswish: "hardswish",
    nn.functional.celu: "celu", nn.functional.hardsigmoid: "hardsigmoid",
}
OTHER_METHODS = {"tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
                 "softmax": "softmax", "log_softmax": "log_softmax"}


def module_activation(module: nn.Module) -> Optional[Activation]:
    """The activation an ``nn`` activation module applies (None for any other module)."""
    if isinstance(module, nn.LeakyReLU):
        return _leaky(module.negative_slope)
    if isinstance(module, nn.ReLU):
        return RELU
    if isinstance(module, nn.ReLU6):
        return _clip("relu6", 0.0, 6.0)
    if isinstance(module, nn.Hardtanh):
        return _clip("hardtanh", module.min_val, module.max_val)
    if type(module).__module__ == "torch.nn.modules.activation":
        return Activation(type(module).__name__.lower(), OTHER, fn=module)
    return None


def function_activation(fn) -> Optional[Activation]:
    """The activation a plain function applies when called on one tensor with its defaults."""
    if fn in _RELU_FUNCTIONS:
        return RELU
    if isinstance(fn, nn.Module):
        return module_activation(fn)
    if fn in _LEAKY_FUNCTIONS:
        return _leaky(0.01)
    if fn in _RELU6_FUNCTIONS:
        return _clip("relu6", 0.0, 6.0)
    if fn in _HARDTANH_FUNCTIONS:
        return _clip("hardtanh", -1.0, 1.0)
    if fn in OTHER_FUNCTIONS:
        return Activation(OTHER_FUNCTIONS[fn], OTHER, fn=fn)
    return None


def node_activation(node, modules: Dict[str, nn.Module]) -> Optional[Activation]:
    """The activation a ``torch.fx`` node applies to its first argument, or None when it is not one."""
    if node.op == "call_module":
        module = modules.get(node.target)
        return None if module is None else module_activation(module)
    if node.op == "call_function":
        fn = node.target
        if fn in _RELU_FUNCTIONS:
            return RELU
        if fn in _LEAKY_FUNCTIONS:
            slope = _argument(node, 1, "negative_slope", 0.01)
            return _leaky(slope) if _numeric(slope) and slope is not None else None
        if fn in _RELU6_FUNCTIONS:
            return _clip("relu6", 0.0, 6.0)
        if fn in _HARDTANH_FUNCTIONS:
            low, high = _argument(node, 1, "min_val", -1.0), _argument(node, 2, "max_val", 1.0)
            return _clip("hardtanh", low, high) if _numeric(low) and _numeric(high) else None
        if fn in _CLAMP_FUNCTIONS:
            low, high = _argument(node, 1, "min", None), _argument(node, 2, "max", None)
            if _numeric(low) and _numeric(high) and (low is not None or high is not None):
                return _clip("clamp", low, high)
            return None
        if fn in OTHER_FUNCTIONS:
            extra = tuple(a for a in node.args[1:] if not isinstance(a, torch.fx.Node))
            kwargs = {k: v for k, v in node.kwargs.items() if not isinstance(v, torch.fx.Node)}
            return Activation(OTHER_FUNCTIONS[fn], OTHER, fn=lambda z, fn=fn, a=extra, k=kwargs: fn(z, *a, **k))
        return None
    if node.op == "call_method":
        if node.target in ("relu", "relu_"):
            return RELU
        if node.target in _CLAMP_METHODS:
            low, high = _argument(node, 1, "min", None), _argument(node, 2, "max", None)
            if _numeric(low) and _numeric(high) and (low is not None or high is not None):
                return _clip("clamp", low, high)
            return None
        if node.target in OTHER_METHODS:
            name = OTHER_METHODS[node.target]
            return Activation(name, OTHER, fn=getattr(torch, name))
    return None
