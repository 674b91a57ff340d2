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
"""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional


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
        failed = exc_type is not None
        if failed:
            pool.shutdown(wait=False, cancel_futures=True)   # drop what has not started
            if issubclass(exc_type, KeyboardInterrupt):
                from ._progress import cancel_all

                cancel_all()
        pool.shutdown(wait=True)
        return False
