"""Exact singular values of convolutional layers (MATH.md section 9).

A ``Conv2d`` weight ``K`` of shape ``(C_out, C_in, kh, kw)`` has two spectra:

* the kernel matrix ``K_mat = K.reshape(C_out, C_in kh kw)``:
  ``relusv.singular_values(K_mat)`` (its rank is the layer's channel rank,
  what factorisation and pruning change);
* the operator ``A_K`` on ``C_in x H x W`` images. With circular padding and
  stride 1 it is block-circulant and ``conv_singular_values`` computes all of
  its ``H W min(C_out, C_in)`` singular values exactly (Sedghi, Gupta, Long,
  ICLR 2019). With zero padding or strides there is no such formula;
  ``relusv.torch.conv_operator_norm`` estimates the top value by power
  iteration.
"""
from __future__ import annotations

import ctypes
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _arrays, _native
from ._native import check, lib
from ._progress import ProgressOption, ProgressSession
from .errors import InvalidInputError, InvalidTypeError
from .width import _positive_int


def _input_size(input_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, (bool, np.bool_)):
        input_size = (input_size, input_size)
    try:
        sizes = tuple(input_size)
    except TypeError:
        raise InvalidTypeError(f"input_size must be an integer or a pair (H, W), got {input_size!r}") from None
    if len(sizes) != 2:
        raise InvalidInputError(f"input_size must be (H, W), got {input_size!r}")
    h, w = (_positive_int(v, "input_size") for v in sizes)
    return h, w


def kernel_weight(weight: Any) -> np.ndarray:
    """A conv weight as a float32/float64 array of shape ``(C_out, C_in, kh, kw)``."""
    a = _arrays.as_float_array(weight, "weight")
    if a.ndim != 4:
        raise InvalidInputError(f"weight must have shape (C_out, C_in, kh, kw), got shape {a.shape}")
    if 0 in a.shape:
        raise InvalidInputError(f"weight has an empty dimension: shape {a.shape}")
    return a


def kernel_matrix(weight: Any) -> np.ndarray:
    """``K_mat = K.reshape(C_out, C_in kh kw)``: the kernel matrix of MATH.md section 9."""
    a = kernel_weight(weight)
    return a.reshape(a.shape[0], -1)


def conv_singular_values(weight: Any, input_size: Union[int, Sequence[int]], k: Optional[int] = None, *,
                         threads: Optional[int] = None, progress: ProgressOption = None) -> np.ndarray:
    """Singular values of the stride-1 circular convolution with kernel ``weight``, descending.

    ``weight`` has shape ``(C_out, C_in, kh, kw)`` (a ``Conv2d.weight``; NumPy
    or torch); ``input_size`` is ``(H, W)`` (or one integer for a square
    input), at least the kernel's size. The operator maps ``C_in x H x W`` to
    ``C_out x H x W`` with circular padding (``padding_mode="circular"``,
    ``padding = kernel // 2``, stride 1, dilation 1; any padding amount gives
    the same values, as it only shifts the output). Per frequency ``(u, v)``
    the ``C_out x C_in`` complex matrix
    ``F(u, v) = sum_{a, c} K[:, :, a, c] exp(-2 pi i (u a / H + v c / W))``
    is summed directly over the ``kh kw`` taps and its singular values come
    from LAPACK's complex ``gesdd``; their union over all ``H W`` frequencies
    is the spectrum (MATH.md section 9). One frequency of each conjugate pair
    is computed (a real kernel gives both the same values).

    For the kernel matrix's own spectrum (the channel rank) use
    ``relusv.singular_values(relusv.conv.kernel_matrix(weight))``.

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in, kh, kw)
        The kernel (``Conv2d.weight``; NumPy or torch). float32 weights are
        computed in float32, other real dtypes in float64.
    input_size : int or (int, int)
        ``(H, W)`` of the input images, or one integer for ``H = W``; at
        least the kernel's size.
    k : int, optional
        Return only the ``k`` largest values (default: all).
    threads : int, optional
        Threads sharing the frequencies (default one per core).
    progress : bool, callable or None
        ``relusv.ProgressOption``.

    Returns
    -------
    numpy.ndarray
        The ``H W min(C_out, C_in)`` singular values (or the largest ``k``),
        descending, in the weight's float dtype.

    Raises
    ------
    InvalidInputError
        For a weight that is not 4-D, a kernel larger than the input, NaN or
        infinity, ``k`` or ``threads`` out of range.
    InvalidTypeError
        For complex or non-numeric weights.
    MemoryLimitError
        When the spectrum does not fit in ``relusv.memory_limit()`` (checked
        before allocating).

    Examples
    --------
    >>> import numpy as np, relusv
    >>> identity = np.zeros((2, 2, 3, 3)); identity[0, 0, 1, 1] = identity[1, 1, 1, 1] = 1.0
    >>> relusv.conv_singular_values(identity, (4, 4), k=3)   # the identity map: all ones
    array([1., 1., 1.])
    """
    a = kernel_weight(weight)
    c_out, c_in, kh, kw = a.shape
    h, w = _input_size(input_size)
    count = h * w * min(c_out, c_in)
    top = 0
    if k is not None:
        top = _positive_int(k, "k")  # 0 would mean all values to the library; its range is the library's check
        count = min(top, count)
    threads = 0 if threads is None else _positive_int(threads, "threads")
    mat = _arrays.prepare(a.reshape(c_out, c_in * kh * kw))
    m = _arrays.matrix(mat)
    # First the library's checks (shapes, sizes, memory), then the output buffer.
    check(lib.relusv_conv_singular_values(ctypes.byref(m), c_in, kh, kw, h, w, top, threads, None,
                                          _native.PROGRESS_FN(), None))
    out, ptr = _arrays.double_buffer(count)
    with ProgressSession("conv singular values", progress) as session:
        check(lib.relusv_conv_singular_values(ctypes.byref(m), c_in, kh, kw, h, w, top, threads, ptr,
                                              session.callback, None))
    return out.astype(a.dtype, copy=False)
