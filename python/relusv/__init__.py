"""relusv: ReLU singular values and Gaussian mean widths for looking inside ReLU networks.

Implements Dittmer, King and Maass, "Singular Values for ReLU Layers"
(IEEE TNNLS 2020) over a native engine (Swift on OpenBLAS/LAPACK). Rows are
points; a layer's weight ``W`` is ``out x in`` as in PyTorch.
"""
from ._native import VERSION as __version__
from ._progress import ProgressOption, cancel_all
from .accumulator import GMWAccumulator
from .conv import conv_singular_values
from .errors import (
                     CancelledError,
                     ComputationError,
                     InvalidInputError,
                     InvalidTypeError,
                     MemoryLimitError,
                     ReluSVError,
                     UserInputError,
)
from .memory import memory_limit, set_memory_limit
from .spectra import (
                     OperatorWidth,
                     ReluSpectrum,
                     WeightSVD,
                     numerical_rank,
                     operator_gmw,
                     rank_of_spectrum,
                     relu_fit_gradient,
                     relu_singular_values,
                     singular_values,
                     truncated_svd,
)
from .width import WidthEstimate, diameter, effective_dimension, gaussian_to_spherical_factor, gmw

__all__ = [
    "__version__",
    "gmw",
    "diameter",
    "effective_dimension",
    "gaussian_to_spherical_factor",
    "GMWAccumulator",
    "WidthEstimate",
    "ProgressOption",
    "ReluSVError",
    "InvalidInputError",
    "InvalidTypeError",
    "ComputationError",
    "CancelledError",
    "MemoryLimitError",
    "UserInputError",
    "cancel_all",
    "set_memory_limit",
    "memory_limit",
    "singular_values",
    "truncated_svd",
    "numerical_rank",
    "rank_of_spectrum",
    "relu_singular_values",
    "WeightSVD",
    "relu_fit_gradient",
    "ReluSpectrum",
    "operator_gmw",
    "OperatorWidth",
    "conv_singular_values",
]
