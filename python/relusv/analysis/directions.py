"""The seeded Gaussian directions of ``relusv.gmw``, in NumPy (MATH.md section 4).

The library draws direction ``j`` of a width computed with seed ``s`` from a
counter-based generator (Philox4x32-10 keyed by ``s``, stream 1, Box-Muller on
two 53-bit uniforms): entry ``(j, c)`` is a pure function of ``(s, j, c)``.
``gaussian_directions`` evaluates the same function, so projections formed
here agree with ``relusv.gmw(x, samples, seed)`` direction by direction (up to
the last bits of ``log`` / ``cos`` / ``sin`` in the two math libraries; the
test suite checks the agreement against the library).
"""
from __future__ import annotations

import functools

import numpy as np

from ..errors import InvalidInputError

WIDTH_DIRECTIONS_STREAM = 1
_MASK32 = np.uint64(0xFFFFFFFF)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MAX_VALUES = 1 << 28   # the library's limit on samples x dimension


def _philox(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray, c3: np.ndarray, seed: int):
    """Philox4x32 with 10 rounds on uint64 arrays holding 32-bit counters; the key is ``seed``."""
    k0, k1 = seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF
    for r in range(10):
        if r:
            k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & _MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & _MASK32)
    return c0, c1, c2, c3


def gaussian_directions(dimension: int, samples: int, seed: int) -> np.ndarray:
    """The ``samples x dimension`` Gaussian directions ``relusv.gmw`` uses with ``seed`` (float64).

    Parameters
    ----------
    dimension, samples : int
        Positive; ``samples * dimension`` at most ``2**28`` (the library's limit).
    seed : int
        In ``[0, 2**64)``.

    Returns
    -------
    numpy.ndarray, shape (samples, dimension)

    Raises
    ------
    InvalidInputError
        For a non-positive size, a size beyond the limit or a seed out of range.

    Examples
    --------
    >>> import numpy as np, relusv
    >>> x = np.random.default_rng(0).normal(size=(50, 7))
    >>> p = x @ gaussian_directions(7, 30, seed=4).T
    >>> w = np.mean(p.max(axis=0) - p.min(axis=0))
    >>> bool(abs(w - relusv.gmw(x, samples=30, seed=4, trim=0)) < 1e-10 * w)
    True
    """
    dimension, samples, seed = int(dimension), int(samples), int(seed)
    if dimension < 1 or samples < 1:
        raise InvalidInputError(f"dimension and samples must be positive, got {dimension} and {samples}")
    if dimension * samples > _MAX_VALUES:
        raise InvalidInputError(f"samples x dimension = {samples} x {dimension} exceeds the limit of {_MAX_VALUES}")
    if not 0 <= seed < 1 << 64:
        raise InvalidInputError(f"seed must lie in [0, 2**64), got {seed}")
    pairs = (dimension + 1) // 2
    row = np.repeat(np.arange(samples, dtype=np.uint64), pairs)
    pair = np.tile(np.arange(pairs, dtype=np.uint64), samples)
    r0, r1, r2, r3 = _philox(pair & _MASK32, row & _MASK32,
                             ((row >> np.uint64(32)) ^ ((pair >> np.uint64(32)) << np.uint64(16))) & _MASK32,
                             np.full_like(row, WIDTH_DIRECTIONS_STREAM), seed)
    a = (r0 << np.uint64(21)) ^ (r1 >> np.uint64(11))
    b = (r2 << np.uint64(21)) ^ (r3 >> np.uint64(11))
    mask53 = np.uint64((1 << 53) - 1)
    scale = 1.0 / 9007199254740992.0
    u1 = ((a & mask53).astype(np.float64) + 1.0) * scale
    u2 = (b & mask53).astype(np.float64) * scale
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    out = np.empty((samples, 2 * pairs))
    out[:, 0::2] = (radius * np.cos(angle)).reshape(samples, pairs)
    out[:, 1::2] = (radius * np.sin(angle)).reshape(samples, pairs)
    return np.ascontiguousarray(out[:, :dimension])


@functools.lru_cache(maxsize=2)
def shared_directions(dimension: int, samples: int, seed: int) -> np.ndarray:
    """``gaussian_directions(dimension, samples, seed)``, read-only and kept for the last two sizes: the sites
    of one table (a layer's input and output, consecutive layers) share them instead of drawing them again."""
    out = gaussian_directions(dimension, samples, seed)
    out.setflags(write=False)
    return out
