#!/usr/bin/env python3
"""Train the network that ``relusv report`` analyses by default, and save it.

A ReLU MLP 64-100-100-100-10 (three hidden layers of width 100, as the
paper's MLPs) on scikit-learn's bundled handwritten digits (1797 images of
8x8 pixels, scaled to [0, 1]). The training split is 30 % of the images
(stratified, ``random_state=0``); the other 70 % are held out, so that the
trained network misclassifies enough held-out points (a few dozen) to
compare correctly and incorrectly classified sets of equal size.

Training is plain NumPy in float64 (no torch needed, deterministic for a
given NumPy/BLAS): He-normal initialisation from ``numpy.random.default_rng(0)``,
zero biases, softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8),
mini-batches of 32 in a seeded random order, 30 epochs (training accuracy
reaches 100 % after about 15).

Writes ``python/relusv/data/digits_mlp.npz`` with ``W0, b0, ..., W3, b3``
(float32, ``W`` is out x in), the index arrays ``train_index`` and
``test_index`` into ``load_digits().data``, and ``meta`` (a JSON string with
the settings and accuracies). Run from the repository root:

    .venv/bin/python scripts/train_default_network.py
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SIZES = (64, 100, 100, 100, 10)
TEST_FRACTION = 0.7
EPOCHS = 30
BATCH = 32
LEARNING_RATE = 1e-3
SEED = 0
OUT = Path(__file__).resolve().parent.parent / "python" / "relusv" / "data" / "digits_mlp.npz"


def forward(weights, biases, x):
    """Activations of every layer: the input, each hidden ReLU output, the logits."""
    acts = [x]
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = acts[-1] @ w.T + b
        acts.append(np.maximum(z, 0.0) if i < len(weights) - 1 else z)
    return acts


def accuracy(weights, biases, x, y) -> float:
    return float(np.mean(forward(weights, biases, x)[-1].argmax(axis=1) == y))


def train(x, y, epochs: int, seed: int):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0.0, np.sqrt(2.0 / n), size=(m, n)) for n, m in zip(SIZES[:-1], SIZES[1:])]
    biases = [np.zeros(m) for m in SIZES[1:]]
    params = weights + biases
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            acts = forward(weights, biases, x[idx])
            logits = acts[-1]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1.0
            g = p / len(idx)  # d(mean cross-entropy)/d(logits)
            grads_w, grads_b = [None] * len(weights), [None] * len(weights)
            for i in reversed(range(len(weights))):
                grads_w[i], grads_b[i] = g.T @ acts[i], g.sum(axis=0)
                if i > 0:
                    g = (g @ weights[i]) * (acts[i] > 0)
            step += 1
            for p_, grad, m_, v_ in zip(params, grads_w + grads_b, first, second):
                m_ *= 0.9
                m_ += 0.1 * grad
                v_ *= 0.999
                v_ += 0.001 * grad * grad
                p_ -= LEARNING_RATE * (m_ / (1 - 0.9**step)) / (np.sqrt(v_ / (1 - 0.999**step)) + 1e-8)
    return weights, biases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"output .npz (default {OUT})")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    train_index, test_index = train_test_split(np.arange(len(y)), test_size=TEST_FRACTION, random_state=0,
                                               stratify=y)
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    weights, biases = train(x[train_index], y[train_index], args.epochs, args.seed)
    weights = [w.astype(np.float32) for w in weights]
    biases = [b.astype(np.float32) for b in biases]
    meta = {
        "dataset": "sklearn.datasets.load_digits, pixels / 16",
        "sizes": list(SIZES), "epochs": args.epochs, "batch": BATCH, "learning_rate": LEARNING_RATE,
        "seed": args.seed, "test_fraction": TEST_FRACTION,
        "train_accuracy": accuracy(weights, biases, x[train_index], y[train_index]),
        "test_accuracy": accuracy(weights, biases, x[test_index], y[test_index]),
    }
    arrays = {f"W{i}": w for i, w in enumerate(weights)}
    arrays.update({f"b{i}": b for i, b in enumerate(biases)})
    save_archive(args.out, arrays, train_index, test_index, meta)
    return 0


def save_archive(out: Path, arrays: dict, train_index: np.ndarray, test_index: np.ndarray, meta: dict) -> None:
    """Writes a built-in network: its arrays, the split's indices and ``meta`` as JSON (shared by the scripts)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays, train_index=train_index.astype(np.int32),
                        test_index=test_index.astype(np.int32), meta=np.array(json.dumps(meta)))
    print(f"wrote {out}: train accuracy {meta['train_accuracy']:.4f}, "
          f"held-out accuracy {meta['test_accuracy']:.4f} on {len(test_index)} images")


if __name__ == "__main__":
    raise SystemExit(main())
