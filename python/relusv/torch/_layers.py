"""Finding the (linear, ReLU) layers of a model and swapping modules in place.

A *layer* in the sense of MATH.md is ``phi(x) = ReLU(W x + b)``. In a PyTorch
model it is a linear-like module (``nn.Linear`` or ``DoubleLinear``) whose
output goes straight into a ``nn.ReLU`` / ``nn.LeakyReLU``. Modules are
inspected in registration order, which is the execution order of an
``nn.Sequential`` and of the usual hand-written MLP.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch
from torch import nn

from .double_linear import DoubleLinear

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)


def is_linear_like(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, DoubleLinear))


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside ``DistributedDataParallel`` / ``DataParallel``.

    Probe passes go through the inner module so that they trigger no
    collective of the wrapper (ranks run different numbers of probe batches).
    """
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


@dataclass(frozen=True)
class Layer:
    """A linear-like module and the activation applied right after it (or None)."""

    name: str
    module: nn.Module
    activation: Optional[nn.Module]

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """The activation's output computed from the linear output ``z`` (never in place)."""
        if isinstance(self.activation, nn.LeakyReLU):
            return torch.nn.functional.leaky_relu(z, self.activation.negative_slope)
        if isinstance(self.activation, nn.ReLU):
            return torch.relu(z)
        return z

    @property
    def leaky_slope(self) -> float:
        return float(self.activation.negative_slope) if isinstance(self.activation, nn.LeakyReLU) else 0.0


def _leaves(model: nn.Module) -> List[tuple]:
    return [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]


def find_layers(model: nn.Module, names: Optional[Iterable[str]] = None) -> List[Layer]:
    """The layers of ``model``: by default every linear-like module followed by a ReLU.

    With ``names``, exactly those modules (linear-like or not), each paired
    with the ReLU registered right after it, if any.
    """
    leaves = _leaves(model)
    following = {name: (leaves[i + 1][1] if i + 1 < len(leaves) else None) for i, (name, _) in enumerate(leaves)}
    if names is None:
        layers = [Layer(name, m, following[name]) for name, m in leaves
                  if is_linear_like(m) and isinstance(following[name], ACTIVATIONS)]
        if not layers:
            raise ValueError("the model has no Linear or DoubleLinear module followed by a ReLU module; "
                             "name the modules to watch with layers=[...]")
        return layers
    modules = dict(model.named_modules())
    layers = []
    for name in names:
        if name not in modules or not name:
            raise ValueError(f"the model has no submodule named {name!r}; "
                             f"known names: {[n for n in modules if n][:20]}")
        nxt = following.get(name)
        layers.append(Layer(name, modules[name], nxt if isinstance(nxt, ACTIVATIONS) else None))
    return layers


def weight_of(module: nn.Module) -> torch.Tensor:
    """The ``(out, in)`` weight of a linear-like module (the product for a DoubleLinear)."""
    return module.weight.detach()


def bias_of(module: nn.Module) -> Optional[torch.Tensor]:
    b = getattr(module, "bias", None)
    return None if b is None else b.detach()


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Puts ``new`` where the submodule ``name`` was."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def predicted_labels(output: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits: argmax over the last axis (sign of a single logit)."""
    if output.ndim >= 2 and output.shape[-1] > 1:
        return output.argmax(dim=-1)
    return (output.reshape(output.shape[0]) > 0).long()


class TrainingModes:
    """Saves every submodule's ``training`` flag and restores it exactly."""

    def __init__(self, model: nn.Module):
        self.modes = [(m, m.training) for m in model.modules()]

    def restore(self) -> None:
        for m, training in self.modes:
            m.training = training
