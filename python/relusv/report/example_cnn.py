"""The built-in CNN example (``relusv report --example cnn``): the digits CNN on its held-out digits.

``relusv/data/digits_cnn.npz`` was produced by ``scripts/train_digits_cnn.py``
(torch, deterministic): the network of ``relusv.torch.digits_cnn`` (two
convolutions, the second followed by a BatchNorm, then two linear layers)
trained on the same 30 % of scikit-learn's digits as the built-in MLP; the
report runs on the other 70 %, as 1 x 8 x 8 images.
"""
from __future__ import annotations

from .data import LabelledData, validate
from .errors import missing_dependency
from .source import ModelSource

MODEL_SOURCE = "built-in digits CNN conv(1->16) conv(16->32, stride 2)+BN fc(512->64) fc(64->10) " \
               "(relusv/data/digits_cnn.npz)"


def cnn_inputs() -> tuple:
    """``(model, data, train)``: the built-in CNN (a ``ModelSource``), its held-out and its training images."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise missing_dependency("scikit-learn", "the built-in CNN example (--example cnn)") from None
    try:
        import torch  # noqa: F401
    except ImportError:
        raise missing_dependency("torch", "the built-in CNN example (--example cnn)") from None
    import numpy as np

    from ..torch.digits_cnn import WEIGHTS, digit_images, load_digits_cnn

    model, _, _, meta = load_digits_cnn()
    with np.load(WEIGHTS, allow_pickle=False) as archive:
        test_index, train_index = archive["test_index"], archive["train_index"]
    x, y = digit_images()
    data: LabelledData = validate(x[test_index], y[test_index], None, 10,
                                  f"scikit-learn digits, {len(test_index)} held-out 8 x 8 images")
    train: LabelledData = validate(x[train_index], y[train_index], None, 10,
                                   f"scikit-learn digits, {len(train_index)} training images")
    notes = [f"trained by scripts/train_digits_cnn.py: held-out accuracy {meta['test_accuracy']:.4f}"]
    return ModelSource(model, None, MODEL_SOURCE, notes), data, train
