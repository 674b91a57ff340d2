"""The memory limit that the library checks input-sized buffers against.

Every allocation whose size depends on the input (directions, products,
scratch, kept factors) is compared with the limit before it happens; a
request above it raises ``MemoryLimitError`` and allocates nothing. The
limit is the value set here, else the environment variable
``RELUSV_MEMORY_LIMIT`` (bytes, or a number with a suffix K, M, G or T),
else the physical memory; lowered to the free address space when the
process has an ``RLIMIT_AS``.
"""
from __future__ import annotations

from . import _validation
from ._native import lib


def set_memory_limit(limit: int | None) -> None:
    """Sets the limit in bytes; ``None`` restores the default.

    Parameters
    ----------
    limit : int or None
        The new limit in bytes, positive; None restores the default
        (``RELUSV_MEMORY_LIMIT``, else the physical memory).

    Returns
    -------
    None

    Raises
    ------
    InvalidInputError
        ``limit`` is not positive, or too large for the native size type.
    InvalidTypeError
        ``limit`` is not an integer (or None).

    Examples
    --------
    >>> import relusv
    >>> relusv.set_memory_limit(2**30)
    >>> relusv.memory_limit() <= 2**30
    True
    >>> relusv.set_memory_limit(None)
    """
    lib.relusv_set_memory_limit(0 if limit is None else _validation.positive_int(limit, "limit"))


def memory_limit() -> int:
    """The limit in bytes in effect now.

    Returns
    -------
    int
        The limit that input-sized allocations are checked against: the value
        set by ``set_memory_limit``, else ``RELUSV_MEMORY_LIMIT``, else the
        physical memory, lowered to the free address space under ``RLIMIT_AS``.

    Raises
    ------
    None
        Reading the limit cannot fail.

    Examples
    --------
    >>> import relusv
    >>> relusv.memory_limit() > 0
    True
    """
    return int(lib.relusv_memory_limit())
