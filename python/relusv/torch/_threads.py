"""Running small tensor work on one thread.

The iterations of ``conv_operator_norm`` apply a convolution to one image at
a time: work far too small to split across threads. On several threads each
operation pays for their synchronisation, and on a machine whose cores are
busy with other processes a thread that waits for a descheduled sibling
stalls the whole iteration (several times slower on two busy cores). Such
loops run under ``one_torch_thread()``, and so does work that runs beside
another computation on purpose (``Monitor`` computes operator norms while a
worker thread computes singular values): inside the block, relusv's own native
calls made for torch helpers use one thread too (``native_threads``).
"""
from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

import torch

_one_thread = contextvars.ContextVar("relusv_one_thread", default=False)   # per thread
_lock = threading.Lock()
_depth = 0
_saved = 1


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Limits torch's intra-op threads to one inside the block, restoring the count after.

    The thread count is process-wide: the first caller to enter saves it,
    the last to leave restores it, so concurrent callers never leave torch at
    one thread whatever order they finish in (the rule of the engine's
    ``BLASThreadLimit`` for OpenBLAS).
    """
    global _depth, _saved
    token = _one_thread.set(True)
    with _lock:
        if _depth == 0:
            _saved = torch.get_num_threads()
            if _saved != 1:
                torch.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and torch.get_num_threads() != _saved:
                torch.set_num_threads(_saved)
        _one_thread.reset(token)


def native_threads() -> Optional[int]:
    """The ``threads`` option for relusv's native calls here: 1 inside ``one_torch_thread()`` on this thread,
    else None (one per core)."""
    return 1 if _one_thread.get() else None
