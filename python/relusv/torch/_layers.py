"""Small helpers shared by relusv.torch: unwrapping, swapping modules, devices, predictions, modes.

Which modules are layers is decided in one place, ``discovery``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import InvalidInputError, InvalidTypeError


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside ``DistributedDataParallel`` / ``DataParallel`` / ``torch.compile``.

    Probe passes go through the inner module so that they trigger no
    collective of the wrapper (ranks run different numbers of probe batches)
    and no compilation; layers keep the names of the user's module (no
    ``_orig_mod.`` prefix of a compiled module's ``OptimizedModule``).
    """
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers) or _compiled(model):
        model = model._orig_mod if _compiled(model) else model.module
    return model


def _compiled(model: nn.Module) -> bool:
    """Whether ``model`` is the ``OptimizedModule`` that ``torch.compile`` returns (recognised without
    importing ``torch._dynamo``)."""
    return type(model).__module__.startswith("torch._dynamo") and isinstance(getattr(model, "_orig_mod", None),
                                                                          nn.Module)


def weight_of(module: nn.Module) -> torch.Tensor:
    """The detached weight of a layer module (the product ``W1 W2`` for a DoubleLinear)."""
    return module.weight.detach()


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


def forward(model, inputs: torch.Tensor, device: torch.device, reference: Optional[nn.Module] = None) -> torch.Tensor:
    """``model(inputs)`` on the model's device, floating inputs cast to the model's floating dtype.

    ``model`` may be any callable (a traced graph's runner) when ``reference`` is the module whose parameters
    give the dtype.
    """
    owner = model if reference is None else reference
    floating = next((p.dtype for p in owner.parameters() if p.is_floating_point()), None)
    if floating is not None and inputs.is_floating_point():
        inputs = inputs.to(dtype=floating)
    try:
        return model(inputs.to(device))
    except RuntimeError as error:   # a shape or dtype the model does not take, as torch words it
        if isinstance(error, getattr(torch, "OutOfMemoryError", ())):
            raise
        raise InvalidInputError(f"the model's forward pass fails on probe inputs of shape {tuple(inputs.shape)}: "
                                f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from error


def predicted_labels(output: torch.Tensor) -> torch.Tensor:
    """Class predictions from logits: argmax over the last axis (sign of a single logit)."""
    if not torch.is_tensor(output):
        raise InvalidTypeError(f"the model returns a {type(output).__name__}, not a tensor of logits: pass "
                               "predict=, a function from the model's output to class labels")
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
