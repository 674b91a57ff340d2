"""The torch-free analysis side of relusv: group selection and the calibrated comparison (MATH.md section 11).

NumPy and the native library (the set extremes of the permutation statistics, ``relusv_set_extremes``);
nothing here imports ``relusv.torch``: the torch adapters (``analyze``,
``Monitor``) and the report call into this package, never the reverse.
"""
from .compare import (
    DEFAULT_ALPHA,
    DEFAULT_BOOTSTRAP,
    DEFAULT_MAX_GROUP_SIZE,
    DEFAULT_PERMUTATIONS,
    DEFAULT_REPEATS,
    GROUPS,
    MIN_GROUP_SIZE,
    VERDICTS,
    Comparison,
    Design,
    Functional,
    adjust,
    compare,
    comparison_reason,
    design,
    equal_size_subsets,
    for_family,
    gmw_functional,
    holm,
    maximum_functional,
    permutations_for,
    projections,
    spread,
    verdict,
)
from .directions import gaussian_directions

__all__ = ["DEFAULT_ALPHA", "DEFAULT_BOOTSTRAP", "DEFAULT_MAX_GROUP_SIZE", "DEFAULT_PERMUTATIONS", "DEFAULT_REPEATS",
           "GROUPS", "MIN_GROUP_SIZE", "VERDICTS", "Comparison", "Design", "Functional", "adjust", "compare",
           "comparison_reason", "design", "equal_size_subsets", "for_family", "gmw_functional", "gaussian_directions", "holm", "maximum_functional", "permutations_for",
           "projections", "spread", "verdict"]
