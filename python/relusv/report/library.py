"""The library calls the report makes, in one place.

Linear spectra and truncations come from ``relusv.singular_values`` /
``relusv.truncated_svd`` (LAPACK divide and conquer); ReLU singular-value
bounds from ``relusv.relu_singular_values``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

import relusv


def singular_values(w: np.ndarray) -> np.ndarray:
    """All singular values of ``w``, non-increasing, in float64."""
    return np.asarray(relusv.singular_values(w), dtype=np.float64)


def svd_factors(w: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(U, s, Vt)`` of the thin SVD; ``U[:, :r] * s[:r] @ Vt[:r]`` is the rank-r truncation."""
    u, s, vt = relusv.truncated_svd(w, min(w.shape))
    return np.asarray(u, dtype=np.float64), np.asarray(s, dtype=np.float64), np.asarray(vt, dtype=np.float64)


def relu_bounds(w: np.ndarray, b: Optional[np.ndarray], x: Optional[np.ndarray], ks: np.ndarray, seed: int,
                max_steps: int, time_budget: Optional[float], progress, sphere_points: int = 2000) -> dict:
    """Upper bounds of the ReLU singular values ``s_k(phi; X)`` (MATH.md sections 1-3).

    ``x=None`` means a seeded sample of ``sphere_points`` points of the unit
    sphere (with ``b=None``: the unit-ball ReLU singular values of section 1).
    Returns ``{"ks", "sigma", "truncation_bound", "bound", "source", "radius", "points"}``.
    """
    r = relusv.relu_singular_values(w, b, x, ks=ks, seed=seed, max_steps=max_steps, time_budget=time_budget,
                                    progress=progress, sphere_points=sphere_points).to_dict()
    out = {key: r[key] for key in ("ks", "sigma", "truncation_bound", "bound", "source")}
    out["radius"], out["points"] = r["data_max_norm"], r["points"]
    return out
