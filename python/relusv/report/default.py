"""The built-in default: the shipped digits MLP on its held-out digits.

``relusv/data/digits_mlp.npz`` was produced by
``scripts/train_default_network.py`` (NumPy, fixed seed): a ReLU MLP
64-100-100-100-10 trained on 30 % of scikit-learn's bundled handwritten digits
(``sklearn.datasets.load_digits``, offline). The report uses the other 70 %
(held out, indices stored in the file), so the correctly and incorrectly
classified sets are both points the network never saw.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import LabelledData, validate
from .errors import missing_dependency
from .model import Network, load_npz_network
from .source import from_network

NETWORK = Path(__file__).resolve().parent.parent / "data" / "digits_mlp.npz"
MODEL_SOURCE = "built-in digits MLP 64-100-100-100-10 (relusv/data/digits_mlp.npz)"


def default_inputs() -> tuple:
    """``(model, data, train)``: the built-in network (a ``ModelSource``), its held-out and its training data."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise missing_dependency("scikit-learn", "the built-in default (without --model and --data)") from None
    network: Network = load_npz_network(NETWORK)
    with np.load(NETWORK, allow_pickle=False) as archive:
        test_index, train_index = archive["test_index"], archive["train_index"]
    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    data: LabelledData = validate(x[test_index], y[test_index], network.input_dimension, network.classes,
                                  f"scikit-learn digits, {len(test_index)} held-out images")
    train: LabelledData = validate(x[train_index], y[train_index], network.input_dimension, network.classes,
                                   f"scikit-learn digits, {len(train_index)} training images")
    return from_network(network, MODEL_SOURCE), data, train
