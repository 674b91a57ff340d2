"""Progress reporting and Ctrl-C for long native calls.

Every long call passes a ``relusv_progress_fn`` to the library, which invokes
it on the calling thread between blocks of work. The callback updates a
progress bar (tqdm if installed, else a plain stderr line) and, when the user
pressed Ctrl-C, answers "stop": the library unwinds, frees its memory and
returns ``RELUSV_ERROR_CANCELLED``, and the caller re-raises
``KeyboardInterrupt``.

Ctrl-C is caught by a SIGINT handler installed for the duration of the call
(main thread, default handler only) that merely sets a flag: a
``KeyboardInterrupt`` raised inside a ctypes callback could otherwise fire
on entry to the callback, before any ``try``, and be swallowed by ctypes.

Ctrl-C in any thread: a call running in a worker thread never sees the
signal (Python runs handlers in the main thread only), so on import, when
SIGINT still has Python's default handler, relusv wraps it: the wrapper calls
``relusv_cancel_all`` (every native computation running at that moment stops
at its next check, within about a second, and raises ``CancelledError`` in
its thread) and then raises ``KeyboardInterrupt`` as before. A single
LAPACK call (the SVD of a large matrix) cannot be interrupted and finishes
first. ``cancel_all()`` does the same from code.

An exception raised by a progress callback (``SystemExit`` included) stops
the computation and is re-raised unchanged once the library has unwound.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Callable, Optional, Union

from . import _native
from .errors import CancelledError

ProgressOption = Union[bool, None, Callable[[int, int], Optional[bool]]]
"""``True``: always show a bar; ``False``: silent; ``None`` (default): show a bar
on a terminal once the call has run for a second; a callable ``f(done, total)``
is called instead of a bar and may return ``True`` to cancel."""


class _PlainBar:
    def __init__(self, description: str, total: int):
        self.description, self.total, self.last = description, max(total, 1), -1

    def update_to(self, done: int) -> None:
        percent = int(100 * done / self.total)
        if percent != self.last:
            self.last = percent
            filled = percent // 4
            sys.stderr.write(f"\r{self.description}: [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


class _TqdmBar:
    def __init__(self, description: str, total: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=description, leave=False)

    def update_to(self, done: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _make_bar(description: str, total: int):
    try:
        return _TqdmBar(description, total)
    except ImportError:
        return _PlainBar(description, total)


class ProgressSession:
    """Owns the C callback of one native call; use as a context manager.

    >>> with ProgressSession("gmw", progress=None) as session:   # doctest: +SKIP
    ...     _native.check(lib.relusv_gmw(..., session.callback, None))
    """

    def __init__(self, description: str, progress: ProgressOption = None, delay: float = 1.0):
        self.description = description
        self.option = progress
        self.delay = 0.0 if progress is True else delay
        self.interrupted = False
        self.user_cancelled = False
        self.callback_error: Optional[BaseException] = None
        self.bar = None
        self.started = time.monotonic()
        self.callback = _native.PROGRESS_FN(self._on_progress)
        self._previous_sigint = None

    def _wants_bar(self) -> bool:
        if self.option is True:
            return True
        if self.option is None:
            return sys.stderr.isatty() and time.monotonic() - self.started >= self.delay
        return False

    def _on_progress(self, _user, done: int, total: int) -> int:
        # Runs with the GIL on the calling thread; a pending Ctrl-C runs
        # _on_sigint as this frame starts, and becomes a cancellation request.
        if self.interrupted:
            return 1
        try:
            if callable(self.option):
                if self.option(int(done), int(total)):
                    self.user_cancelled = True
                    return 1
            elif self.bar is None and self._wants_bar():
                self.bar = _make_bar(self.description, int(total))
            if self.bar is not None:
                self.bar.update_to(int(done))
            return 0
        except KeyboardInterrupt:
            self.interrupted = True
            return 1
        except BaseException as error:  # re-raised by __exit__ once the library has unwound (SystemExit too)
            self.callback_error = error
            return 1

    def _on_sigint(self, _signum, _frame) -> None:
        self.interrupted = True
        cancel_all()  # calls in other threads stop too

    def __enter__(self) -> ProgressSession:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) in (signal.default_int_handler, _sigint_cancelling_native_calls):
            self._previous_sigint = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
        if self.bar is not None:
            self.bar.close()
        if self.interrupted and (exc_type is None or exc_type is CancelledError):
            # Also when Ctrl-C came after the last callback: the user asked to stop.
            raise KeyboardInterrupt from None
        if exc_type is CancelledError and self.callback_error is not None:
            raise self.callback_error
        return False


def cancel_all() -> None:
    """Stops every relusv computation running now, in every thread.

    Each raises ``CancelledError`` in its own thread at its next check
    (within about a second; a single LAPACK call finishes first). Calls
    started afterwards run normally.
    """
    _native.lib.relusv_cancel_all()


def _sigint_cancelling_native_calls(signum, frame) -> None:
    cancel_all()
    signal.default_int_handler(signum, frame)


def install_interrupt_handler() -> None:
    """Wraps Python's default SIGINT handler so that Ctrl-C also cancels native calls.

    Only from the main thread and only over the default handler: a handler the
    application installed is left alone.
    """
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _sigint_cancelling_native_calls)


install_interrupt_handler()
