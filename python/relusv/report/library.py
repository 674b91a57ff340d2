"""The library calls the report makes, in one place.

Linear spectra and truncations come from ``relusv.singular_values`` /
``relusv.truncated_svd``; ReLU singular-value bounds from
``relusv.relu_singular_values``. When an older build of the package lacks the
spectra API, linear spectra fall back to LAPACK through NumPy (the same
divide-and-conquer routine) and the ReLU bound columns are left empty.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

import relusv


def has_relu_spectra() -> bool:
    return hasattr(relusv, "relu_singular_values")


def singular_values(w: np.ndarray) -> np.ndarray:
    """All singular values of ``w``, non-increasing."""
    if hasattr(relusv, "singular_values"):
        return np.asarray(relusv.singular_values(w), dtype=np.float64)
    return np.linalg.svd(w, compute_uv=False)


def svd_factors(w: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(U, s, Vt)`` of the thin SVD; ``U[:, :r] * s[:r] @ Vt[:r]`` is the rank-r truncation."""
    rank = min(w.shape)
    if hasattr(relusv, "truncated_svd"):
        u, s, vt = relusv.truncated_svd(w, rank)
        return np.asarray(u, dtype=np.float64), np.asarray(s, dtype=np.float64), np.asarray(vt, dtype=np.float64)
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    return u, s, vt


def relu_bounds(w: np.ndarray, b: np.ndarray, x: np.ndarray, ks: np.ndarray, seed: int,
                time_budget: Optional[float], progress) -> Optional[dict]:
    """Upper bounds of the data-dependent ReLU singular values ``s_k(phi; X)`` (MATH.md sections 2-3).

    Returns ``{"ks", "sigma", "truncation_bound", "bound"}`` as lists, or
    ``None`` when the library has no ReLU spectra.
    """
    if not has_relu_spectra():
        return None
    r = relusv.relu_singular_values(w, b, x, ks=ks, seed=seed, time_budget=time_budget, progress=progress)
    return {
        "ks": [int(k) for k in np.asarray(r.ks)],
        "sigma": [float(v) for v in np.asarray(r.sigma)],
        "truncation_bound": [float(v) for v in np.asarray(r.truncation_bound)],
        "bound": [float(v) for v in np.asarray(r.bound)],
    }
