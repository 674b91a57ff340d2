"""Exceptions raised by relusv.

Errors found by the native library carry its one-line message and status.
They subclass the built-in exception a Python user would expect, so
``except ValueError`` works as with NumPy or scikit-learn.
"""
from __future__ import annotations


class ReluSVError(Exception):
    """Base class of the errors the native library reports.

    Attributes ``status`` (the integer code) and ``status_name`` (e.g.
    ``"RELUSV_ERROR_SHAPE"``) identify the failure as ``relusv.h`` names it.
    """

    def __init__(self, message: str, *, status: int = -1, status_name: str = ""):
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class UserInputError(ReluSVError):
    """Base of the errors that a caller's input causes (not a failure of relusv).

    The command line reports every one of them in one line and exits with
    status 2.
    """


class InvalidInputError(UserInputError, ValueError):
    """Bad values or shapes: NaN/Inf, empty sets, mismatched dimensions, ..."""


class InvalidTypeError(UserInputError, TypeError):
    """An unsupported or mismatched element type."""


class MemoryLimitError(UserInputError, MemoryError):
    """The input needs more memory than the library's limit allows; nothing was allocated.

    The limit is the physical memory unless ``relusv.set_memory_limit`` or the
    environment variable ``RELUSV_MEMORY_LIMIT`` sets another.
    """


class ComputationError(ReluSVError, RuntimeError):
    """A numerical routine failed (e.g. an SVD did not converge) or an internal error."""


class CancelledError(ReluSVError):
    """The computation was cancelled through its progress callback."""


_CLASS_BY_STATUS_NAME = {
    "RELUSV_ERROR_DTYPE": InvalidTypeError,
    "RELUSV_ERROR_LAPACK": ComputationError,
    "RELUSV_ERROR_INTERNAL": ComputationError,
    "RELUSV_ERROR_CANCELLED": CancelledError,
    "RELUSV_ERROR_OUT_OF_MEMORY": MemoryLimitError,
}


def error_class_for_status(status_name: str) -> type[ReluSVError]:
    """The exception class for a status name from ``relusv.h``."""
    return _CLASS_BY_STATUS_NAME.get(status_name, InvalidInputError)
