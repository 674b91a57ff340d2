"""Harmonic pruning with retraining (MATH.md section 8) of a chain of linear layers, through the torch route.

Runs only when torch is installed and training data are given (the built-in default has its own training
split). The network becomes a float64 ``nn.Sequential`` of ``Linear`` / ``ReLU`` (``source.network_module``)
and is pruned as every torch model of the report is (``torch_pruning.prune_module``): double layers, the
bisection schedule, ``RETRAIN_BATCHES`` Adam steps on seeded mini-batches of the training data after every
cut, a cut kept only while the stopping-set accuracy stays within the tolerance of the start.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from .model import LAYER_NAME, Network
from .source import network_module

RETRAIN_BATCHES = 50
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


RETRAINING = {"batches": RETRAIN_BATCHES, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
              "criterion": "after every cut; the cut is kept while the stopping-set accuracy stays within the "
                           "tolerance of the start"}


def retraining_options(x_train: np.ndarray, y_train: np.ndarray, seed: int) -> dict:
    """``relusv.torch.harmonic_prune``'s retraining keywords: ``RETRAIN_BATCHES`` Adam steps on seeded shuffled
    mini-batches of the training data."""
    import torch

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(np.asarray(x_train, dtype=np.float64)),
                                       torch.from_numpy(np.asarray(y_train, dtype=np.int64))),
        batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return {"retrain": loader, "retrain_batches": RETRAIN_BATCHES,
            "optimizer": lambda params: torch.optim.Adam(params, lr=LEARNING_RATE)}


def available() -> bool:
    try:
        import torch  # noqa: F401

        from ..torch import harmonic_prune  # noqa: F401
    except Exception:  # torch missing or unusable
        return False
    return True


def harmonic_prune_retrained(network: Network, x: np.ndarray, y: np.ndarray, x_train: np.ndarray,
                             y_train: np.ndarray, tolerance: float, seed: int, names: List[str],
                             show_progress: Optional[bool] = None) -> Optional[dict]:
    """The retrained pruning path and the chosen ranks; ``None`` without torch or hidden layers."""
    from .torch_pruning import prune_module

    hidden = [i for i, layer in enumerate(network.layers) if layer.relu]
    if not hidden or len(x_train) == 0 or not available():
        return None
    module = network_module(network)
    layers = [LAYER_NAME.format(i) for i in hidden]              # network_module's names
    index = dict(zip(layers, hidden))
    shapes = {LAYER_NAME.format(i): list(network.layers[i].shape) for i in hidden}
    p = prune_module(module, x, y, tolerance, seed, index, shapes, show_progress, (x_train, y_train), layers,
                     network.parameters)
    if p is not None:
        p["names"] = names
    return p
