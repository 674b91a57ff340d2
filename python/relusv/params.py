"""Parameter and multiply-add counts of models, as stored and in the cheaper form per layer (MATH.md sections 7-9).

A linear map ``W`` of shape ``(m, n)`` (a ``Linear`` weight, or a convolution's kernel matrix ``K_mat`` with
``n = C_in kh kw``) of rank at most ``r`` can be stored densely (``m n`` numbers) or as the factors of a
rank-``r`` factorisation ``W1 W2`` (``r (m + n)`` numbers). The factors are the cheaper form exactly when
``r (m + n) < m n``, i.e. below the break-even rank ``m n / (m + n)``; at a tie the dense form is kept (one
tensor instead of two). A bias adds ``m`` either way. Per input point a dense layer costs ``m n`` multiply-adds
per output position, the factors ``r (m + n)``.

This module is the one owner of that rule: ``layer_count`` for one layer given its shape and rank (used by the
NumPy routes), ``model_counts`` for a torch model (every ``Linear`` / ``Conv2d`` / ``DoubleLinear`` /
``DoubleConv2d``; any other parameter is counted as stored), and ``store_cheaper``, which converts every double
layer at or above break-even back to its dense layer so that the model holds exactly
``model_counts(model).cheaper.parameters`` numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

DENSE, FACTORED = "dense", "factored"


def cheaper_form(m: int, n: int, rank: int) -> str:
    """``"factored"`` when ``rank (m + n) < m n`` (below the break-even rank ``m n / (m + n)``), else ``"dense"``."""
    return FACTORED if rank * (m + n) < m * n else DENSE


def break_even_rank(m: int, n: int) -> float:
    """``m n / (m + n)``: the rank at which factors and the dense weight hold equally many numbers."""
    return m * n / (m + n)


@dataclass(frozen=True)
class Counts:
    """Parameters and multiply-adds per input point (``None`` where a convolution's output size is unknown)."""

    parameters: int
    multiply_adds: Optional[int]

    def __add__(self, other: Counts) -> Counts:
        macs = None if self.multiply_adds is None or other.multiply_adds is None else \
            self.multiply_adds + other.multiply_adds
        return Counts(self.parameters + other.parameters, macs)


def layer_count(m: int, n: int, rank: Optional[int] = None, bias: bool = True, form: Optional[str] = None,
                positions: Optional[int] = 1) -> Counts:
    """Counts of one layer with weight ``(m, n)`` of rank ``rank`` (None: ``min(m, n)``).

    ``form``: ``"dense"``, ``"factored"`` or None for the cheaper of the two (``cheaper_form``).
    ``positions``: output positions per input point (1 for a ``Linear``, ``H' W'`` for a convolution; None when
    unknown, then ``multiply_adds`` is None).
    """
    rank = min(m, n) if rank is None else int(rank)
    form = form or cheaper_form(m, n, rank)
    weights = m * n if form == DENSE else rank * (m + n)
    return Counts(weights + (m if bias else 0), None if positions is None else weights * positions)


@dataclass(frozen=True)
class LayerCounts:
    """One layer of ``model_counts``: its name, shape ``(m, n)`` of ``W`` / ``K_mat``, rank bound and counts."""

    name: str
    shape: tuple
    rank: int
    stored_form: str
    cheaper_form: str
    stored: Counts
    cheaper: Counts


@dataclass(frozen=True)
class ModelCounts:
    """``model_counts``: totals as stored and in the cheaper form per layer, and the per-layer rows."""

    stored: Counts
    cheaper: Counts
    layers: List[LayerCounts]


def _linear_view(module) -> Optional[tuple]:
    """``(m, n, rank, bias, stored form)`` of a (double) linear or convolution layer; None for anything else."""
    from torch import nn

    from .torch.double_conv import DoubleConv2d
    from .torch.double_linear import DoubleLinear

    bias = getattr(module, "bias", None) is not None
    if isinstance(module, DoubleLinear):
        return module.out_features, module.in_features, module.rank, bias, FACTORED
    if isinstance(module, DoubleConv2d):
        return module.out_channels, module.fan_in, module.rank, bias, FACTORED
    if isinstance(module, nn.Linear):
        m, n = module.weight.shape
        return m, n, min(m, n), bias, DENSE
    if isinstance(module, nn.Conv2d):
        m = module.weight.shape[0]
        n = module.weight[0].numel()
        return m, n, min(m, n), bias, DENSE
    return None


def _positions(model, example) -> Dict[str, int]:
    """Output positions per input point of every module, from one forward pass on ``example`` (hooks)."""
    import torch

    from .torch._layers import TrainingModes, forward, model_device

    found: Dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        view = _linear_view(module)
        if view is None:
            continue

        def hook(mod, inputs, output, name=name, m=view[0]):
            found[name] = int(output[0].numel() // m) if output.dim() > 1 else 1

        handles.append(module.register_forward_hook(hook))
    modes = TrainingModes(model)
    try:
        model.eval()  # one point through a training-mode BatchNorm fails, and would move its running statistics
        with torch.no_grad():
            forward(model, torch.as_tensor(example[:1]), model_device(model))
    finally:
        modes.restore()
        for handle in handles:
            handle.remove()
    return found


def model_counts(model, example: Any = None) -> ModelCounts:
    """Parameters and multiply-adds of ``model`` as stored and with each layer in its cheaper form.

    Parameters
    ----------
    model : torch.nn.Module
    example : tensor, optional
        An input batch; its first point is run through the model once to find the output positions of the
        convolutions. Without it, multiply-adds are counted for ``Linear`` layers (one position) and are None as
        soon as the model has a convolution.

    Returns
    -------
    ModelCounts
        ``stored.parameters`` equals ``sum(p.numel() for p in model.parameters())``; ``cheaper`` counts every
        ``Linear`` / ``Conv2d`` / double layer in the cheaper of its dense and factored forms (a dense layer of
        full structural rank is cheapest dense) and every other parameter as stored. Multiply-adds cover the
        linear and convolution layers only.
    """
    from torch import nn

    positions = _positions(model, example) if example is not None else {}
    rows: List[LayerCounts] = []
    counted = set()
    for name, module in model.named_modules():
        view = _linear_view(module)
        if view is None:
            continue
        m, n, rank, bias, stored_form = view
        where = positions.get(name, 1 if isinstance(module, nn.Linear) or hasattr(module, "in_features") else None)
        rows.append(LayerCounts(name, (m, n), rank, stored_form, cheaper_form(m, n, rank),
                                layer_count(m, n, rank, bias, stored_form, where),
                                layer_count(m, n, rank, bias, None, where)))
        counted.update(id(p) for p in module.parameters(recurse=False))
    rest = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    stored, cheaper = Counts(rest, 0), Counts(rest, 0)
    for row in rows:
        stored, cheaper = stored + row.stored, cheaper + row.cheaper
    return ModelCounts(stored, cheaper, rows)


def store_cheaper(model):
    """Converts, in place, every ``DoubleLinear`` / ``DoubleConv2d`` whose rank is at or above break-even to its
    dense ``Linear`` / ``Conv2d`` (same map up to rounding); double layers below break-even stay factored.
    Afterwards ``model_counts(model).stored == model_counts(model).cheaper``. Returns ``model``."""
    from .torch._layers import replace_module
    from .torch.double_conv import DoubleConv2d
    from .torch.double_linear import DoubleLinear

    for name, module in list(model.named_modules()):
        if isinstance(module, (DoubleLinear, DoubleConv2d)):
            m, n, rank, _, _ = _linear_view(module)
            if cheaper_form(m, n, rank) == DENSE:
                dense = module.to_linear() if isinstance(module, DoubleLinear) else module.to_conv()
                replace_module(model, name, dense)
    return model
