"""The sizes NumPy files declare, checked before anything is read.

A ``.npy`` header declares a shape and dtype; ``np.load`` allocates that
much before reading the data. A ``.npz`` member may be deflate-compressed, so
a small file can declare (and inflate to) gigabytes. Every array relusv reads
from a file goes through ``check_npy_file`` or ``check_npz_member`` first:
the declared size must fit the bytes the file (or member) holds and the
memory limit (``relusv.memory``).
"""
from __future__ import annotations

import math
from typing import IO, Tuple

import numpy as np

from . import memory
from .errors import InvalidInputError


def _header(stream: IO[bytes], what: str) -> Tuple[int, int]:
    """``(declared data bytes, header bytes)`` of the ``.npy`` stream, read from its header only."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = reader(stream, max_header_size=10_000)
    except Exception as error:  # numpy raises several types for malformed headers
        raise InvalidInputError(f"cannot read {what} as a .npy array: {error}") from None
    if dtype.hasobject:
        raise InvalidInputError(f"cannot read {what}: it holds Python objects (a pickle), which relusv does not load")
    if any(not isinstance(d, int) or d < 0 for d in shape):
        raise InvalidInputError(f"cannot read {what} as a .npy array: its header declares the shape {shape}, "
                                "which has a negative dimension")
    return math.prod(shape) * dtype.itemsize, stream.tell()


def _check(declared: int, header: int, stored: int, what: str) -> None:
    if header + declared > stored:
        raise InvalidInputError(f"{what} declares {declared:,} bytes of data but holds {max(stored - header, 0):,}")
    memory.within_memory_limit(declared, what)


def check_npy_file(path, what: str) -> None:
    """Refuses a ``.npy`` file whose header declares more data than the file holds or the memory limit allows.

    Raises
    ------
    InvalidInputError, MemoryLimitError
    """
    import os

    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            return   # not a .npy file (a .npz is checked member by member)
        f.seek(0)
        declared, header = _header(f, what)
    _check(declared, header, os.path.getsize(path), what)


def check_npz_member(archive: np.lib.npyio.NpzFile, key: str, what: str) -> None:
    """Refuses member ``key`` of an open ``.npz`` when its declared size exceeds its uncompressed size as the
    zip directory declares it (which bounds what is inflated) or the memory limit."""
    member = key if key in archive.zip.namelist() else f"{key}.npy"
    info = archive.zip.getinfo(member)
    try:
        with archive.zip.open(info) as stream:
            declared, header = _header(stream, what)
    except InvalidInputError:
        raise
    except Exception as error:  # zipfile / zlib errors of a corrupt member
        raise InvalidInputError(f"cannot read {what}: {error}") from None
    _check(declared, header, info.file_size, what)
