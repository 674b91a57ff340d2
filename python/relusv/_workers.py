"""Independent native computations run side by side, one core each.

The engine's calls release the GIL, and many of them (the bound curve of one
layer over one group, the singular values of one kernel) are too small to
keep several cores busy alone: their BLAS blocks are small, their fits run
along one chain of ranks. A table of many layers runs such calls on a pool of
threads instead, each call told to use one thread (``threads=1``), so that
every core has a whole computation. Each call's result is what it would be
alone on one thread: it depends on its arguments, never on the pool's size or
the order the calls finish in.

Leaving the pool with an exception drops the calls not started yet; on
Ctrl-C (``KeyboardInterrupt``) the running ones are cancelled too
(``relusv.cancel_all``, which the SIGINT handler has already called once;
calling it again stops a call that started in between). The pool waits for
its threads before the exception propagates, so no computation outlives it.

While a pool is open, NumPy's BLAS runs at one thread too (``one_blas_thread``,
through threadpoolctl where it is installed): the workers' NumPy products
(a clipped activation's candidates, the comparisons' statistics) would
otherwise each start a BLAS thread per core, and on two cores two workers
with two BLAS threads each spent a fifth of MobileNetV2's table waiting for
each other.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_limit: Any = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """The BLAS libraries threadpoolctl finds (NumPy's) at one thread inside the block, restored after.

    The limit is process-wide: the first block to enter sets it, the last to leave restores it, so
    blocks on several threads never leave BLAS at one thread whatever order they end in. Without
    threadpoolctl nothing changes. relusv's own native calls set their own OpenBLAS thread count.
    """
    global _blas_depth, _blas_limit
    with _blas_lock:
        if _blas_depth == 0:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                _blas_limit = None
            else:
                _blas_limit = threadpool_limits(1, user_api="blas")
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


class NativeWorkers:
    """A pool of ``workers`` threads (default: one per available core) for independent native calls.

    Use as a context manager; ``submit(fn, *args, **kwargs)`` returns a ``Future``.

    >>> with NativeWorkers(2) as pool:
    ...     futures = [pool.submit(pow, 2, k) for k in range(4)]
    >>> [f.result() for f in futures]
    [1, 2, 4, 8]
    """

    def __init__(self, workers: Optional[int] = None):
        self.workers = available_cores() if workers is None else max(1, int(workers))
        self._pool: Optional[ThreadPoolExecutor] = None

    def __enter__(self) -> NativeWorkers:
        self._blas = one_blas_thread()
        self._blas.__enter__()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="relusv-worker")
        return self

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        if self._pool is None:
            raise RuntimeError("NativeWorkers.submit outside its with block")
        return self._pool.submit(fn, *args, **kwargs)

    def __exit__(self, exc_type, exc, tb) -> bool:
        pool, self._pool = self._pool, None
        if pool is None:
            return False
        try:
            if exc_type is not None:
                pool.shutdown(wait=False, cancel_futures=True)   # drop what has not started
                if issubclass(exc_type, KeyboardInterrupt):
                    from ._progress import cancel_all

                    cancel_all()
            pool.shutdown(wait=True)
        finally:
            self._blas.__exit__(exc_type, exc, tb)
        return False
