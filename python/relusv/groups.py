"""Comparing the correctly and incorrectly classified points: the names of ``relusv.analysis.compare``.

The group selection and the comparison live in ``relusv.analysis`` (MATH.md
sections 6 and 11); this module keeps the older import path.
"""
from .analysis.compare import GROUPS, MIN_GROUP_SIZE, comparison_reason, equal_size_subsets, spread

__all__ = ["GROUPS", "MIN_GROUP_SIZE", "comparison_reason", "equal_size_subsets", "spread"]
