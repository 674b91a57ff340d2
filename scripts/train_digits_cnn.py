#!/usr/bin/env python3
"""Train the built-in example CNN (``relusv.torch.digits_cnn``) and save it.

The architecture of ``relusv/torch/digits_cnn.py`` on scikit-learn's bundled
digits (8 x 8 pixels scaled to [0, 1]), with the split of the built-in MLP
(``scripts/train_default_network.py``): a stratified 30 % for training
(``random_state=0``), the other 70 % held out. Deterministic: torch on one
thread with deterministic algorithms, ``torch.manual_seed(0)`` for the
initialisation and the batch order; Adam (lr 1e-3), mini-batches of 32,
30 epochs, cross-entropy. A few seconds on one core.

Writes ``python/relusv/data/digits_cnn.npz``: the state dict's tensors
(float32; BatchNorm running statistics included) under their names,
``train_index`` / ``test_index`` into ``load_digits().data``, and ``meta``
(JSON: settings and accuracies). Run from the repository root:

    .venv/bin/python scripts/train_digits_cnn.py
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
from relusv.torch.digits_cnn import WEIGHTS, digit_images, digits_cnn  # noqa: E402
from train_default_network import save_archive  # noqa: E402  (scripts/ is on the path when run)

TEST_FRACTION = 0.7
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 1e-3
SEED = 0


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).double().mean())


def main() -> int:
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    images, labels = digit_images()
    train_index, test_index = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, random_state=0,
                                               stratify=labels)
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    x_train, y_train = torch.from_numpy(images[train_index]), torch.from_numpy(labels[train_index])
    x_test, y_test = torch.from_numpy(images[test_index]), torch.from_numpy(labels[test_index])
    model = digits_cnn()
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            optimiser.step()
    meta = {"dataset": "sklearn.datasets.load_digits, pixels / 16, images (1, 8, 8)",
            "architecture": str(model), "epochs": args.epochs, "batch": BATCH, "learning_rate": LEARNING_RATE,
            "seed": args.seed, "test_fraction": TEST_FRACTION,
            "train_accuracy": accuracy(model, x_train, y_train), "test_accuracy": accuracy(model, x_test, y_test)}
    save_archive(args.out, {k: v.detach().numpy() for k, v in model.state_dict().items()}, train_index,
                 test_index, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
