"""Exact singular values of convolutional layers (MATH.md section 9).

A ``Conv2d`` weight ``K`` of shape ``(C_out, C_in / G, kh, kw)`` (``G`` groups)
has two spectra:

* the kernel matrix ``K_mat = K.reshape(C_out, C_in kh kw / G)``:
  ``relusv.singular_values(K_mat)`` (its rank is the layer's channel rank,
  what factorisation and pruning change);
* the operator ``A_K`` on ``C_in x H x W`` images. With circular padding it is
  block-circulant, and ``conv_singular_values`` computes all of its singular
  values exactly, with groups and with a stride dividing ``H`` and ``W``
  (Sedghi, Gupta, Long, ICLR 2019; MATH.md section 9, "Grouped convolutions"
  and "Strided circular convolutions"). For zero padding see
  ``relusv.torch.conv_operator_norm`` (a certified bracket of the top value).
"""
from __future__ import annotations

import ctypes
import sys
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import _arrays, _native, _validation
from ._native import check, lib
from ._progress import ProgressOption, ProgressSession
from .errors import InvalidInputError, InvalidTypeError


def _input_size(input_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(input_size, (int, np.integer)) and not isinstance(input_size, (bool, np.bool_)):
        input_size = (input_size, input_size)
    try:
        sizes = tuple(input_size)
    except TypeError:
        raise InvalidTypeError(f"input_size must be an integer or a pair (H, W), got {input_size!r}") from None
    if len(sizes) != 2:
        raise InvalidInputError(f"input_size must be (H, W), got {input_size!r}")
    h, w = (_validation.positive_int(v, "input_size") for v in sizes)
    return h, w


def kernel_weight(weight: Any) -> np.ndarray:
    """A conv weight as a float32/float64 array of shape ``(C_out, C_in / G, kh, kw)``."""
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


def _is_conv_module(conv: Any) -> bool:
    """A ``torch.nn.Conv2d`` (subclasses included); torch is not imported for arrays."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(conv, torch.nn.Conv2d)


def _square(value: Any, name: str) -> int:
    """One integer from an integer or an equal pair (torch's ``stride``, ``dilation``)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or values[0] != values[1]:
        raise InvalidInputError(f"{name} = {value!r}: only equal {name}s along both axes are supported")
    return _validation.positive_int(values[0], name)


def dilated_kernel(weight: np.ndarray, dilation: Tuple[int, int]) -> np.ndarray:
    """The kernel with ``d - 1`` zeros between taps: a dilation ``(d_h, d_w)`` as a dense kernel (same operator)."""
    dh, dw = (_validation.positive_int(d, "dilation") for d in dilation)
    if (dh, dw) == (1, 1):
        return weight
    c_out, c_in, kh, kw = weight.shape
    out = np.zeros((c_out, c_in, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=weight.dtype)
    out[:, :, ::dh, ::dw] = weight
    return out


def conv_geometry(conv: Any, groups: Optional[int] = None, stride: Optional[int] = None
                  ) -> Tuple[np.ndarray, int, int]:
    """``(weight, groups, stride)`` of a ``Conv2d`` or of a weight with its ``groups`` and ``stride``.

    The one reading of a convolution's geometry for the circular spectra. A
    module (``torch.nn.Conv2d``) gives its weight, groups, stride and
    dilation (a dilated kernel is expanded with zeros, the same circular
    operator); ``groups`` or ``stride`` passed beside it must agree with it.
    A bare weight cannot tell a grouped convolution from a dense one
    (depthwise ``(C, 1, kh, kw)`` reads as ``1 -> C`` channels): its groups
    default to 1 and must be passed explicitly otherwise.

    Raises
    ------
    InvalidInputError
        Unequal strides or dilations along the two axes, or arguments that
        disagree with the module.
    """
    if _is_conv_module(conv):
        module_groups, module_stride = int(conv.groups), _square(conv.stride, "stride")
        for given, own, name in ((groups, module_groups, "groups"), (stride, module_stride, "stride")):
            if given is not None and given != own:
                raise InvalidInputError(f"{name} = {given} disagrees with the module's {name} = {own}")
        weight = dilated_kernel(kernel_weight(conv.weight.detach().cpu()), tuple(conv.dilation))
        return weight, module_groups, module_stride
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(conv, torch.nn.Module):
        raise InvalidTypeError(f"expected a torch.nn.Conv2d or a weight array, got a {type(conv).__name__}")
    weight = kernel_weight(conv)
    groups = 1 if groups is None else _validation.positive_int(groups, "groups")
    stride = 1 if stride is None else _validation.positive_int(stride, "stride")
    return weight, groups, stride


def _options(groups: int, stride: int, top: int, threads: int) -> _native.ConvOptions:
    options = _native.ConvOptions()
    lib.relusv_conv_options_init(ctypes.byref(options), ctypes.sizeof(options))
    options.groups, options.stride, options.top, options.threads = groups, stride, top, threads
    return options


class _Request:
    """The arguments of one ``relusv_conv_spectrum`` call, checked by the library."""

    def __init__(self, conv: Any, input_size: Any, k: Optional[int], groups: Optional[int],
                 stride: Optional[int], threads: Optional[int]):
        weight, groups, stride = conv_geometry(conv, groups, stride)
        self.dtype = weight.dtype
        c_out, self.c_in, self.kh, self.kw = weight.shape
        self.h, self.w = _input_size(input_size)
        top = 0 if k is None else _validation.positive_int(k, "k")  # 0 means all values to the library
        threads = 0 if threads is None else _validation.positive_int(threads, "threads")
        self.options = _options(groups, stride, top, threads)
        self.kernel = _arrays.prepare(weight.reshape(c_out, -1))
        self.matrix = _arrays.matrix(self.kernel)
        # (H / s)(W / s) G min(C_out / G, C_in s^2 / G), valid once the library accepted the geometry
        count = (self.h // stride) * (self.w // stride) * groups * min(c_out // groups, self.c_in * stride ** 2)
        self.count = count if k is None else top

    def call(self, values: Any, scratch: Any, callback: Any) -> None:
        check(lib.relusv_conv_spectrum(ctypes.byref(self.matrix), self.c_in, self.kh, self.kw, self.h, self.w,
                                       ctypes.byref(self.options), values, scratch, callback, None))


def conv_memory_bytes(conv: Any, input_size: Union[int, Sequence[int]], k: Optional[int] = None, *,
                      groups: Optional[int] = None, stride: Optional[int] = None,
                      threads: Optional[int] = None) -> int:
    """Bytes ``conv_singular_values`` allocates in the library for these arguments.

    Every buffer of the computation (scaled taps, frequency table, values per
    frequency, each worker's GEMM and LAPACK workspaces, the merge) is
    counted; the library checks this sum against its memory limit
    (``relusv.set_memory_limit``) before it allocates anything. The output
    array (``8`` bytes per value) is not included.

    Examples
    --------
    >>> import numpy as np, relusv.conv
    >>> relusv.conv.conv_memory_bytes(np.ones((8, 8, 3, 3)), 16, threads=1) > 0
    True
    """
    request = _Request(conv, input_size, k, groups, stride, threads)
    scratch = ctypes.c_size_t(0)
    request.call(None, ctypes.byref(scratch), _native.PROGRESS_FN())
    return int(scratch.value)


def conv_singular_values(conv: Any, input_size: Union[int, Sequence[int]], k: Optional[int] = None, *,
                         groups: Optional[int] = None, stride: Optional[int] = None,
                         threads: Optional[int] = None, progress: ProgressOption = None) -> np.ndarray:
    """Singular values of a circular convolution (grouped, strided), descending.

    The operator maps ``C_in x H x W`` to ``C_out x (H / s) x (W / s)`` with
    circular padding (``padding_mode="circular"``; any padding amount gives
    the same values, as it only shifts the output), ``G`` groups and stride
    ``s`` dividing ``H`` and ``W``. Per group and output frequency
    ``(u', v')`` the ``C_out / G x (C_in / G) s^2`` block
    ``(1 / s) [F(u' + j H / s, v' + l W / s)]_{j, l < s}`` with
    ``F(u, v) = sum_{a, c} K[:, :, a, c] exp(-2 pi i (u a / H + v c / W))``
    (the group's kernel) is summed directly over the ``kh kw`` taps and its
    singular values come from LAPACK's complex ``gesdd``; their union is the
    spectrum (MATH.md section 9): ``(H / s)(W / s) G min(C_out / G, (C_in / G) s^2)``
    values. A grouped operator is block diagonal, so its spectrum is the
    union of the groups'.

    Parameters
    ----------
    conv : array_like or torch.nn.Conv2d
        A weight of shape ``(C_out, C_in / G, kh, kw)`` (NumPy or torch), or
        a ``Conv2d`` whose weight, groups, stride and dilation are used
        (whatever its padding mode: the values are the circular operator's).
    input_size : int or (int, int)
        ``(H, W)`` (or one integer for a square input), at least the kernel's size.
    k : int, optional
        Only the largest ``k`` values (default all).
    groups : int, optional
        ``G`` for a bare weight (default 1). A depthwise weight ``(C, 1, kh, kw)``
        needs ``groups=C``: the weight alone reads as a dense ``1 -> C`` convolution.
    stride : int, optional
        ``s`` for a bare weight (default 1), dividing ``H`` and ``W``.
    threads : int, optional
        Worker threads sharing the frequencies (default one per core).
    progress : ProgressOption
        As elsewhere (``relusv.ProgressOption``).

    Returns
    -------
    numpy.ndarray
        The values in the weight's float dtype (float32 weights are computed
        in float32), descending.

    Raises
    ------
    InvalidInputError
        Shapes, ``groups`` not dividing ``C_out``, ``s`` not dividing ``H``
        and ``W``, a kernel larger than the input, ``k`` out of range; with
        ``status_name == "RELUSV_ERROR_NONFINITE"``: NaN or infinity in the
        weight, or a value beyond the dtype's range (entries near its largest
        number; smaller ones are scaled exactly, never NaN).
    MemoryLimitError
        The computation needs more than the memory limit (checked before anything is allocated).

    Examples
    --------
    >>> import numpy as np, relusv
    >>> identity = np.zeros((2, 2, 3, 3)); identity[0, 0, 1, 1] = identity[1, 1, 1, 1] = 1.0
    >>> relusv.conv_singular_values(identity, (4, 4), k=3)   # the identity map: all ones
    array([1., 1., 1.])
    >>> depthwise = np.random.default_rng(0).normal(size=(4, 1, 3, 3))
    >>> relusv.conv_singular_values(depthwise, 8, groups=4).shape
    (256,)
    >>> relusv.conv_singular_values(np.ones((2, 2, 3, 3)), 8, stride=2).shape
    (32,)

    For the kernel matrix's own spectrum use
    ``relusv.singular_values(relusv.conv.kernel_matrix(weight))``.
    """
    request = _Request(conv, input_size, k, groups, stride, threads)
    # First the library's checks (shapes, sizes, memory with the output), then the output buffer.
    request.call(None, None, _native.PROGRESS_FN())
    out, ptr = _arrays.double_buffer(request.count)
    with ProgressSession("conv singular values", progress) as session:
        request.call(ptr, None, session.callback)
    return out.astype(request.dtype, copy=False)
