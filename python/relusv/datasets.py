"""The networks and data that ship with relusv, ready for the examples.

Two trained classifiers of scikit-learn's handwritten digits (8 x 8 grey
images, 10 classes, pixels scaled to [0, 1]) are stored in ``relusv/data``:

- the digits MLP 64-100-100-100-10 (``digits_mlp.npz``, trained by
  ``scripts/train_default_network.py``), the default of ``relusv report``;
- the digits CNN (``digits_cnn.npz``, trained by
  ``scripts/train_digits_cnn.py``; architecture in ``relusv.torch.digits_cnn``).

Both were trained on the same stratified 30 % of the digits; the other 70 %
(1,258 images) is held out, and the loaders return the held-out part by
default, so correctly and incorrectly classified points are both unseen.
The images come from ``sklearn.datasets.load_digits`` (bundled with
scikit-learn, no download); the models need torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from .errors import InvalidInputError

DATA = Path(__file__).resolve().parent / "data"
MLP_WEIGHTS = DATA / "digits_mlp.npz"
_SPLITS = ("test", "train", "all")

__all__ = ["load_digits", "load_digits_mlp", "load_digits_cnn"]


def _split_index(split: str) -> np.ndarray:
    if split not in _SPLITS:
        raise InvalidInputError(f"split must be one of {', '.join(map(repr, _SPLITS))}, got {split!r}")
    with np.load(MLP_WEIGHTS, allow_pickle=False) as archive:
        if split == "all":
            return np.sort(np.concatenate([archive["train_index"], archive["test_index"]]))
        return archive[f"{split}_index"]


def load_digits(split: str = "test", images: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits as float32 points in [0, 1] and int64 labels.

    Parameters
    ----------
    split : {"test", "train", "all"}
        ``"test"``: the 1,258 images the shipped networks never saw (default);
        ``"train"``: the 539 they were trained on; ``"all"``: all 1,797.
    images : bool
        ``False``: points of shape ``(N, 64)`` (rows are points, as the MLP
        reads them); ``True``: images of shape ``(N, 1, 8, 8)`` (as the CNN
        reads them).

    Returns
    -------
    x : numpy.ndarray
        float32 pixels in [0, 1].
    y : numpy.ndarray
        int64 class labels 0-9.

    Raises
    ------
    InvalidInputError
        For an unknown ``split``.
    ImportError
        Without scikit-learn.

    Examples
    --------
    >>> from relusv.datasets import load_digits
    >>> x, y = load_digits()
    >>> x.shape, y.shape
    ((1258, 64), (1258,))
    """
    index = _split_index(split)
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = (digits.images / 16.0).astype(np.float32)[index]
    x = x[:, None] if images else x.reshape(len(index), 64)
    return x, digits.target.astype(np.int64)[index]


def load_digits_mlp(split: str = "test"):
    """The shipped digits MLP 64-100-100-100-10 as a torch module, with digits to probe it.

    The model is ``nn.Sequential(Linear(64, 100), ReLU(), Linear(100, 100),
    ReLU(), Linear(100, 100), ReLU(), Linear(100, 10))`` in float32 and eval
    mode, weights from ``relusv/data/digits_mlp.npz``.

    Parameters
    ----------
    split : {"test", "train", "all"}
        Which digits to return with it (see ``load_digits``).

    Returns
    -------
    model : torch.nn.Sequential
        The trained MLP.
    x : numpy.ndarray
        ``(N, 64)`` float32 points.
    y : numpy.ndarray
        int64 labels.

    Raises
    ------
    ImportError
        Without torch or scikit-learn.

    Examples
    --------
    >>> from relusv.datasets import load_digits_mlp
    >>> model, x, y = load_digits_mlp()
    >>> model[0]
    Linear(in_features=64, out_features=100, bias=True)
    """
    import torch
    from torch import nn

    with np.load(MLP_WEIGHTS, allow_pickle=False) as archive:
        weights = [archive[f"W{i}"] for i in range(4)]
        biases = [archive[f"b{i}"] for i in range(4)]
    modules = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        linear = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear, nn.ReLU()] if i < len(weights) - 1 else [linear]
    model = nn.Sequential(*modules).eval()
    x, y = load_digits(split)
    return model, x, y


def load_digits_cnn(split: str = "test"):
    """The shipped digits CNN (``relusv.torch.digits_cnn``) with digit images to probe it.

    ``Conv2d(1, 16, 3) -> ReLU -> Conv2d(16, 32, 3, stride 2) -> BatchNorm2d
    -> ReLU -> Flatten -> Linear(512, 64) -> ReLU -> Linear(64, 10)``, float32,
    eval mode, weights from ``relusv/data/digits_cnn.npz``.

    Parameters
    ----------
    split : {"test", "train", "all"}
        Which digits to return with it (see ``load_digits``).

    Returns
    -------
    model : torch.nn.Sequential
        The trained CNN.
    x : numpy.ndarray
        ``(N, 1, 8, 8)`` float32 images.
    y : numpy.ndarray
        int64 labels.

    Raises
    ------
    ImportError
        Without torch or scikit-learn.

    Examples
    --------
    >>> from relusv.datasets import load_digits_cnn
    >>> model, x, y = load_digits_cnn()
    >>> x.shape
    (1258, 1, 8, 8)
    """
    from .torch.digits_cnn import load_digits_cnn as load_model

    model = load_model()[0]
    x, y = load_digits(split, images=True)
    return model, x, y
