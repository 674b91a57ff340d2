"""relusv inside PyTorch: training monitors, double layers and harmonic pruning.

Needs the optional dependency torch (``pip install relusv[torch]``); the rest
of relusv never imports it.

- ``analyze``: one call from a model and labelled data to a per-layer
  ``pandas.DataFrame`` (spectra, widths of correct vs incorrect points,
  ReLU bounds), layers found by ``discover``.
- ``discover``: the layers of any ``nn.Module`` (tracing, BatchNorm folded),
  named by their qualified module names.
- ``Monitor``: per-layer Gaussian mean widths and spectra of correctly vs
  incorrectly classified probe points during training (MATH.md section 6).
- ``DoubleLinear``: a linear layer stored as two factors ``W1 W2``, with the
  double-p-product initialisation (MATH.md section 7).
- ``harmonic_prune``: the paper's harmonic pruning (MATH.md section 8): layers
  become double layers, ReLU-aware cuts with a short retraining after each,
  kept within a tolerance of the start on a stopping set; a bisection schedule
  (retrainings logarithmic in the ranks); counts by ``relusv.params``.
- ``DoubleConv2d``: a convolution of channel rank at most ``rank``, a
  ``kh x kw`` conv to ``rank`` channels then a ``1 x 1`` conv (MATH.md section 9).
- ``relu_singular_values``: certified ReLU bounds of an ``nn.Linear`` or
  ``nn.Conv2d`` layer over its inputs, channel rank for convolutions
  (MATH.md section 9), BatchNorm folded on request.
- ``conv_operator_norm``: the top singular value of a convolution with any
  padding, stride or groups: exact where cheap, else a certified bracket (MATH.md section 9).
"""
try:
    import torch as _torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("relusv.torch needs PyTorch: pip install 'relusv[torch]' (or pip install torch)") from error

from ..groups import equal_size_subsets
from .analysis import analyze
from .conv_operator import OperatorNormEstimate, conv_operator_norm
from .discovery import Discovery, Layer, discover, fold_batchnorm, register_layer_kind
from .double_conv import DoubleConv2d
from .double_linear import DoubleLinear
from .history import History
from .layer_spectra import LayerReluSpectrum, relu_singular_values
from .monitor import Measurement, Monitor
from .pruning import PruneResult, accuracy, harmonic_prune

__all__ = ["analyze", "discover", "Discovery", "Layer", "fold_batchnorm", "register_layer_kind", "Monitor",
           "Measurement", "History", "DoubleLinear", "harmonic_prune", "PruneResult", "accuracy",
           "equal_size_subsets", "conv_operator_norm", "OperatorNormEstimate",
           "DoubleConv2d", "relu_singular_values", "LayerReluSpectrum"]
