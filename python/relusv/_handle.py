"""Ownership of one native handle shared by threads.

ctypes releases the GIL before the library looks a handle up, so a ``close``
in one thread could otherwise free the object while another thread is
inside a call on it. ``NativeHandle`` counts the calls in flight: ``close``
marks the handle closed at once (new calls raise ``InvalidInputError``) and
the native object is freed by whichever of ``close`` and the last running
call finishes last. The library adds its own guard (a handle table that
keeps the object alive during a call), so both layers are safe on their own.
"""
from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from .errors import InvalidInputError


class NativeHandle:
    """One live library handle, freed once it is closed and no call uses it."""

    def __init__(self, value: ctypes.c_void_p, free: Callable[[ctypes.c_void_p], None], what: str):
        self._value: Optional[ctypes.c_void_p] = value
        self._free = free
        self._what = what
        self._lock = threading.Lock()
        self._active = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @contextmanager
    def borrow(self) -> Iterator[ctypes.c_void_p]:
        """The handle for the duration of one call; raises if already closed."""
        with self._lock:
            if self._closed:
                raise InvalidInputError(f"the {self._what} has been closed")
            self._active += 1
            value = self._value
        try:
            yield value
        finally:
            with self._lock:
                self._active -= 1
                value = self._take_if_unused()
            if value is not None:
                self._free(value)

    def close(self) -> None:
        """Closes now; frees now or when the last running call returns. Idempotent."""
        with self._lock:
            self._closed = True
            value = self._take_if_unused()
        if value is not None:
            self._free(value)

    def _take_if_unused(self) -> Optional[ctypes.c_void_p]:
        if self._closed and self._active == 0 and self._value is not None:
            value, self._value = self._value, None
            return value
        return None
