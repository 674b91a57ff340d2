"""``relusv report``: a layer-by-layer spectral report of a trained ReLU MLP.

``model`` (loading, NumPy forward pass), ``data`` (labelled data),
``analysis`` (per-layer numbers), ``pruning`` (one-shot harmonic pruning),
``findings`` (the paper's observations), ``figures`` / ``html`` / ``build``
(the report directory), ``default`` (the built-in digits network),
``command`` (the command line). ``schema.json`` documents ``report.json``.
"""
from .errors import ReportInputError

__all__ = ["ReportInputError"]
