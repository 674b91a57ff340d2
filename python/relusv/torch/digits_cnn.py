"""The built-in example CNN: a small convolutional network on scikit-learn's digits.

``digits_cnn()`` builds the architecture (8 x 8 grey images, 10 classes):

    Conv2d(1, 16, 3, padding=1) -> ReLU
    Conv2d(16, 32, 3, stride=2, padding=1) -> BatchNorm2d(32) -> ReLU     (32 x 4 x 4)
    Flatten -> Linear(512, 64) -> ReLU -> Linear(64, 10)

``load_digits_cnn()`` returns it with the weights trained by
``scripts/train_digits_cnn.py`` (shipped in ``relusv/data/digits_cnn.npz``),
in eval mode, together with the held-out images and labels (the same
stratified 30 / 70 split as the built-in MLP).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch
from torch import nn

WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "digits_cnn.npz"


def digits_cnn() -> nn.Sequential:
    """The untrained architecture (float32, torch's default initialisation)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))


def digit_images() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as ``(1797, 1, 8, 8)`` float32 images in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32)[:, None], digits.target.astype(np.int64)


def load_digits_cnn(path: Path = WEIGHTS) -> Tuple[nn.Sequential, np.ndarray, np.ndarray, Dict]:
    """``(model, x_test, y_test, meta)``: the trained CNN (eval mode) and its held-out images."""
    with np.load(path) as data:
        model = digits_cnn()
        state = {k: torch.from_numpy(data[k]) for k in model.state_dict()}
        model.load_state_dict(state)
        test_index = data["test_index"]
        meta = json.loads(str(data["meta"]))
    model.eval()
    x, y = digit_images()
    return model, x[test_index], y[test_index], meta
