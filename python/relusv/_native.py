"""Low-level ctypes binding of libReluSVKit (the C interface in ``relusv.h``).

This module only loads the library, mirrors the header's structs and
prototypes, and turns status codes into Python exceptions. The friendly API
lives in the other modules. The library path is, in order: the environment
variable ``RELUSV_LIBRARY``, then ``libReluSVKit.so`` inside this package.

Status codes are not repeated here: their names come from the library's own
``relusv_status_name`` table, read once at import.

The structs and prototypes below mirror ``relusv.h`` version
``HEADER_VERSION`` (``test_abi_layout.py`` checks both against the header).
At load the library's ``relusv_version_number()`` must have the same major
version and at least that minor version (relusv.h, "ABI stability"); any other
library is refused with one message naming both versions and ``RELUSV_LIBRARY``.
"""
from __future__ import annotations

import ctypes
import os
import re
from ctypes import POINTER, c_char_p, c_double, c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Optional

from .errors import error_class_for_status

LIBRARY_NAME = "libReluSVKit.so"

# The relusv.h version these bindings mirror: RELUSV_VERSION_MAJOR, _MINOR, _PATCH.
HEADER_VERSION = (0, 6, 0)


class Matrix(ctypes.Structure):
    """``relusv_matrix``: a row-major matrix in caller memory."""

    _fields_ = [
        ("data", c_void_p),
        ("dtype", c_int32),
        ("rows", c_size_t),
        ("cols", c_size_t),
        ("row_stride", c_size_t),
    ]


class WidthResult(ctypes.Structure):
    """``relusv_width_result``."""

    _fields_ = [
        ("estimate", c_double),
        ("std_error", c_double),
        ("mean", c_double),
        ("mean_std_error", c_double),
        ("samples", c_uint64),
        ("points", c_uint64),
    ]


class AccumulatorInfo(ctypes.Structure):
    """``relusv_gmw_accumulator_info``."""

    _fields_ = [
        ("dimension", c_uint64),
        ("samples", c_uint64),
        ("seed", c_uint64),
        ("points", c_uint64),
        ("dtype", c_int32),
    ]


class ReluSVOptions(ctypes.Structure):
    """``relusv_relu_sv_options``: fill with ``relusv_relu_sv_options_init(byref(o), sizeof(o))``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("leaky_slope", c_double),
        ("seed", c_uint64),
        ("sphere_points", c_uint64),
        ("max_steps", c_uint64),
        ("time_budget", c_double),
        ("threads", c_uint64),
        ("refine", c_int32),
        ("keep_factors", c_int32),
        ("fit_stride", c_uint64),
        ("learning_rate", c_double),
        ("batch_size", c_uint64),
        ("group_size", c_uint64),
        ("fit_points", c_uint64),
        ("weight_svd", c_void_p),
    ]


class ReluSVEntry(ctypes.Structure):
    """``relusv_relu_sv_entry``."""

    _fields_ = [
        ("k", c_uint64),
        ("sigma", c_double),
        ("truncation_bound", c_double),
        ("bound", c_double),
        ("source", c_int32),
        ("steps", c_uint64),
        ("seconds", c_double),
    ]


class ReluSpectrumInfo(ctypes.Structure):
    """``relusv_relu_spectrum_info``."""

    _fields_ = [
        ("count", c_uint64),
        ("rows", c_uint64),
        ("cols", c_uint64),
        ("points", c_uint64),
        ("data_max_norm", c_double),
        ("fit_stride", c_uint64),
        ("dtype", c_int32),
        ("has_factors", c_int32),
    ]


class OperatorWidthResult(ctypes.Structure):
    """``relusv_operator_width``."""

    _fields_ = [
        ("estimate", c_double),
        ("std_error", c_double),
        ("lower", c_double),
        ("upper", c_double),
        ("norm", c_double),
        ("samples", c_uint64),
        ("points", c_uint64),
    ]



class ConvOptions(ctypes.Structure):
    """``relusv_conv_options``: fields only ever appended; fill with ``relusv_conv_options_init``."""

    _fields_ = [
        ("struct_size", c_size_t),
        ("groups", c_uint64),
        ("stride", c_uint64),
        ("top", c_uint64),
        ("threads", c_uint64),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(c_int32, c_void_p, c_uint64, c_uint64)

# relusv_dtype
FLOAT32 = 1
FLOAT64 = 2

_status = c_int32
_handle = c_void_p

# name -> (restype, argtypes), in the order of relusv.h
PROTOTYPES = {
    "relusv_status_name": (c_char_p, [c_int32]),
    "relusv_status_string": (c_char_p, [c_int32]),
    "relusv_last_error": (c_char_p, []),
    "relusv_version_string": (c_char_p, []),
    "relusv_version_number": (c_uint32, []),
    "relusv_set_memory_limit": (None, [c_size_t]),
    "relusv_memory_limit": (c_size_t, []),
    "relusv_cancel_all": (None, []),
    "relusv_gmw": (_status, [POINTER(Matrix), c_size_t, c_uint64, c_double, c_int32,
                             POINTER(c_double), POINTER(WidthResult), PROGRESS_FN, c_void_p]),
    "relusv_diameter": (_status, [POINTER(Matrix), POINTER(c_double), PROGRESS_FN, c_void_p]),
    "relusv_set_extremes": (_status, [POINTER(Matrix), POINTER(c_int64), c_size_t, c_size_t, POINTER(c_double),
                                      POINTER(c_double), PROGRESS_FN, c_void_p]),
    "relusv_gaussian_to_spherical_factor": (_status, [c_uint64, POINTER(c_double)]),
    "relusv_gmw_accumulator_create": (_status, [c_size_t, c_size_t, c_uint64, c_int32, POINTER(_handle)]),
    "relusv_gmw_accumulator_free": (None, [_handle]),
    "relusv_gmw_accumulator_info_get": (_status, [_handle, POINTER(AccumulatorInfo)]),
    "relusv_gmw_accumulator_update": (_status, [_handle, POINTER(Matrix), PROGRESS_FN, c_void_p]),
    "relusv_gmw_accumulator_merge": (_status, [_handle, _handle]),
    "relusv_gmw_accumulator_estimate": (_status, [_handle, c_double, c_int32, POINTER(c_double),
                                                  POINTER(WidthResult)]),
    "relusv_gmw_accumulator_extremes": (_status, [_handle, POINTER(c_double), POINTER(c_double)]),
    "relusv_gmw_accumulator_merge_extremes": (_status, [_handle, POINTER(c_double), POINTER(c_double),
                                                        c_uint64]),
    "relusv_gmw_accumulator_state_size": (_status, [_handle, POINTER(c_size_t)]),
    "relusv_gmw_accumulator_export": (_status, [_handle, c_void_p, c_size_t]),
    "relusv_gmw_accumulator_import": (_status, [c_void_p, c_size_t, POINTER(_handle)]),
    # spectra
    "relusv_singular_values": (_status, [POINTER(Matrix), POINTER(c_double)]),
    "relusv_singular_values_tol": (_status, [POINTER(Matrix), c_double, POINTER(c_double)]),
    "relusv_numerical_rank": (_status, [POINTER(Matrix), POINTER(c_size_t)]),
    "relusv_rank_of_spectrum": (_status, [POINTER(c_double), c_size_t, c_size_t, c_size_t, c_int32,
                                          POINTER(c_size_t)]),
    "relusv_rank_of_spectrum_eps": (_status, [POINTER(c_double), c_size_t, c_size_t, c_size_t, c_double,
                                              POINTER(c_size_t)]),
    "relusv_truncated_svd": (_status, [POINTER(Matrix), c_size_t, POINTER(c_double), POINTER(c_double),
                                       POINTER(c_double)]),
    "relusv_weight_svd_create": (_status, [POINTER(Matrix), POINTER(_handle)]),
    "relusv_weight_svd_create_leading": (_status, [POINTER(Matrix), c_size_t, POINTER(_handle)]),
    "relusv_weight_svd_create_tol": (_status, [POINTER(Matrix), c_size_t, c_double, POINTER(_handle)]),
    "relusv_weight_svd_vectors": (_status, [_handle, POINTER(c_size_t)]),
    "relusv_weight_svd_factors": (_status, [_handle, POINTER(c_double), POINTER(c_double), c_size_t]),
    "relusv_weight_svd_free": (None, [_handle]),
    "relusv_weight_svd_values": (_status, [_handle, POINTER(c_double), c_size_t]),
    "relusv_relu_sv_options_init": (None, [POINTER(ReluSVOptions), c_size_t]),
    "relusv_bound_source_name": (c_char_p, [c_int32]),
    "relusv_relu_singular_values": (_status, [POINTER(Matrix), POINTER(Matrix), POINTER(Matrix), POINTER(c_uint64),
                                              c_size_t, POINTER(ReluSVOptions), POINTER(_handle), PROGRESS_FN,
                                              c_void_p]),
    "relusv_relu_spectrum_free": (None, [_handle]),
    "relusv_relu_spectrum_info_get": (_status, [_handle, POINTER(ReluSpectrumInfo)]),
    "relusv_relu_spectrum_entries": (_status, [_handle, POINTER(ReluSVEntry)]),
    "relusv_relu_spectrum_factors": (_status, [_handle, c_size_t, POINTER(c_size_t), POINTER(c_double),
                                               POINTER(c_double)]),
    "relusv_relu_fit_gradient": (_status, [POINTER(Matrix), POINTER(Matrix), POINTER(Matrix), POINTER(Matrix),
                                           POINTER(Matrix), c_double, POINTER(c_double), POINTER(c_double),
                                           POINTER(c_double)]),
    "relusv_operator_gmw": (_status, [POINTER(Matrix), POINTER(Matrix), POINTER(Matrix), c_int32, c_double,
                                      c_size_t, c_size_t, c_uint64, c_double, POINTER(OperatorWidthResult),
                                      PROGRESS_FN, c_void_p]),
    # convolutions
    "relusv_conv_singular_values": (_status, [POINTER(Matrix), c_size_t, c_size_t, c_size_t, c_size_t, c_size_t,
                                              c_size_t, c_size_t, POINTER(c_double), PROGRESS_FN, c_void_p]),
    "relusv_conv_options_init": (None, [POINTER(ConvOptions), c_size_t]),
    "relusv_conv_spectrum": (_status, [POINTER(Matrix), c_size_t, c_size_t, c_size_t, c_size_t, c_size_t,
                                       POINTER(ConvOptions), POINTER(c_double), POINTER(c_size_t), PROGRESS_FN,
                                       c_void_p]),
}


def library_path() -> Path:
    """Where the shared library is loaded from (``RELUSV_LIBRARY`` wins)."""
    override = os.environ.get("RELUSV_LIBRARY")
    return Path(override) if override else Path(__file__).with_name(LIBRARY_NAME)


def load_failure_message(path: Path, error: OSError) -> str:
    """One message for a library that exists but does not load: what is missing, how to get it."""
    missing = re.match(r"\s*([^:\s]+): cannot open shared object file", str(error))
    what = f"{missing.group(1)} is missing" if missing else str(error)
    return (
        f"relusv: cannot load the native library {path}: {what}. It needs OpenBLAS and LAPACKE: install "
        "the self-contained wheel (`make wheel` builds it, with both bundled), or the system libraries "
        "(Debian/Ubuntu: apt-get install libopenblas0 liblapacke)."
    )


def version_number_parts(number: int) -> tuple:
    """``(major, minor, patch)`` of a ``relusv_version_number()`` (``MAJOR*10000 + MINOR*100 + PATCH``)."""
    return number // 10000, number // 100 % 100, number % 100


def incompatibility(path: Path, number: Optional[int]) -> Optional[str]:
    """Why the library at ``path`` reporting ``number`` (None: no version function) cannot serve
    these bindings, or None when it can: the same major version and at least ``HEADER_VERSION``'s minor."""
    needed = "{}.{}".format(*HEADER_VERSION[:2])
    source = (f"RELUSV_LIBRARY={os.environ['RELUSV_LIBRARY']}" if os.environ.get("RELUSV_LIBRARY")
              else "the library bundled with the package (RELUSV_LIBRARY is not set)")
    advice = ("Point RELUSV_LIBRARY at a compatible libReluSVKit.so, or unset it to use the bundled one"
              if os.environ.get("RELUSV_LIBRARY") else "Reinstall the package (`make install`)")
    if number is None:
        return (f"relusv: the native library {path} ({source}) has no relusv_version_number(): it is not a "
                f"relusv library, and this package needs relusv {needed}.x (at least "
                f"{'.'.join(map(str, HEADER_VERSION))}). {advice}.")
    major, minor, patch = version_number_parts(number)
    if major == HEADER_VERSION[0] and minor >= HEADER_VERSION[1]:
        return None
    return (f"relusv: the native library {path} ({source}) is version {major}.{minor}.{patch}, but this package "
            f"needs {HEADER_VERSION[0]}.{HEADER_VERSION[1]} or a later {HEADER_VERSION[0]}.x (it was written "
            f"against relusv.h {'.'.join(map(str, HEADER_VERSION))}). {advice}.")


def _check_version(library: ctypes.CDLL, path: Path) -> None:
    """Refuse (ImportError) a library whose version these bindings cannot use, before binding anything."""
    function = getattr(library, "relusv_version_number", None)
    number = None
    if function is not None:
        function.restype, function.argtypes = c_uint32, []
        number = int(function())
    problem = incompatibility(path, number)
    if problem:
        raise ImportError(problem)


def _load() -> ctypes.CDLL:
    path = library_path()
    if not path.is_file():
        raise ImportError(
            f"relusv: the native library was not found at {path}. Build and install the package with "
            "`make install` (or `pip install .` in the repository), or point RELUSV_LIBRARY at libReluSVKit.so."
        )
    # CDLL (not PyDLL): every call releases the GIL while the library runs.
    try:
        library = ctypes.CDLL(str(path))
    except OSError as error:
        raise ImportError(load_failure_message(path, error)) from None
    _check_version(library, path)
    for name, (restype, argtypes) in PROTOTYPES.items():
        function = getattr(library, name)
        function.restype = restype
        function.argtypes = argtypes
    return library


lib = _load()

STATUS_NAMES: dict[int, str] = {}
for _code in range(256):
    _name = lib.relusv_status_name(_code)
    if _name is None:
        break
    STATUS_NAMES[_code] = _name.decode()

VERSION = lib.relusv_version_string().decode()


def check(status: int) -> None:
    """Raise the exception matching a non-zero status, with the library's message."""
    if status == 0:
        return
    name = STATUS_NAMES.get(status, f"status {status}")
    message = (lib.relusv_last_error() or b"").decode(errors="replace") or lib.relusv_status_string(status).decode()
    raise error_class_for_status(name)(message, status=status, status_name=name)


NO_PROGRESS = PROGRESS_FN()  # a NULL callback
