"""Progress reporting and Ctrl-C for long native calls.

Every long call passes a ``relusv_progress_fn`` to the library, which invokes
it on the calling thread between blocks of work. The callback updates a
display (``Progress``: the one progress policy of relusv, below) and, when the user
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

import importlib.util
import signal
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, Optional, Union

from . import _native
from .errors import CancelledError

ProgressOption = Union[bool, None, Callable[[int, int], Optional[bool]]]
"""``True``: always show progress; ``False``: silent; ``None`` (default): show it
on a terminal or in a Jupyter kernel once the call has run for a second; a
callable ``f(done, total)`` is called instead of a display and may return
``True`` to cancel."""

DELAY = 1.0
"""Seconds a call runs before ``progress=None`` shows anything."""

_NOTEBOOK_INTERVAL = 0.25  # seconds between two updates of a notebook's text line


def in_notebook() -> bool:
    """Whether this process is a Jupyter (IPython) kernel, where stderr is not a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def shows_progress(option: ProgressOption) -> bool:
    """The policy for ``progress=option``: whether a display may appear at all.

    ``True`` shows, ``False`` and callables show no display, ``None`` shows on a
    terminal (stderr is a TTY) or in a notebook kernel, else (pipes, CI logs)
    nothing.
    """
    if option is None:
        return in_notebook() or sys.stderr.isatty()
    return option is True


class _PlainBar:
    """A terminal bar on stderr, without tqdm."""

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
    """tqdm's terminal bar, or its widget (``tqdm.notebook``) in a notebook."""

    def __init__(self, description: str, total: int, widget: bool = False):
        if widget:
            from tqdm.notebook import tqdm
        else:
            from tqdm.std import tqdm
        self.bar = tqdm(total=total, desc=description, leave=False)

    def update_to(self, done: int) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _NotebookLine:
    """One text output in a notebook, updated in place (no widget, no stderr)."""

    def __init__(self, description: str, total: int):
        from IPython.display import display

        self.description, self.total = description, max(total, 1)
        self.started = self.shown = time.monotonic()
        self.done = 0
        self.handle = display(self._text(), display_id=True)

    def _text(self):
        from IPython.display import Pretty

        percent = int(100 * self.done / self.total)
        filled = percent // 4
        elapsed = time.monotonic() - self.started
        return Pretty(f"{self.description}: [{'#' * filled}{'.' * (25 - filled)}] {percent:3d}% "
                      f"({self.done}/{self.total}, {elapsed:.1f} s)")

    def update_to(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.shown >= _NOTEBOOK_INTERVAL or done >= self.total:
            self.shown = now
            self.handle.update(self._text())

    def close(self) -> None:
        self.handle.update(self._text())


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _make_bar(description: str, total: int):
    """The display for this environment: in a notebook tqdm's widget when
    ipywidgets is installed, else one updating text line; on a terminal tqdm's
    bar, else a plain one."""
    if in_notebook():
        if _has_module("ipywidgets") and _has_module("tqdm"):
            return _TqdmBar(description, total, widget=True)
        return _NotebookLine(description, total)
    try:
        return _TqdmBar(description, total)
    except ImportError:
        return _PlainBar(description, total)


class Progress:
    """Progress of one long call under ``progress=option`` (``ProgressOption``).

    The one policy of relusv: the display appears (``shows_progress``) once
    the call has run ``DELAY`` seconds, or at once for ``progress=True``; a
    callable option receives ``(done, total)`` instead and cancels by
    returning ``True`` (``update_to`` then returns ``True``). Iterating wraps
    ``iterable``; ``update(n)`` / ``update_to(done)`` count by hand;
    ``close()`` ends the display.
    """

    def __init__(self, description: str, total: Optional[int] = None, option: ProgressOption = None,
                 iterable: Optional[Iterable] = None, delay: float = DELAY):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.description, self.total, self.option, self.iterable = description, total or 0, option, iterable
        self.delay = 0.0 if option is True else delay
        self.visible = shows_progress(option)
        self.started = time.monotonic()
        self.done = 0
        self.bar = None

    def update_to(self, done: int, total: Optional[int] = None) -> bool:
        """Records ``done`` of ``total`` steps; ``True`` when a callable option asks to cancel."""
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        if callable(self.option):
            return bool(self.option(self.done, self.total))
        if self.bar is None and self.visible and time.monotonic() - self.started >= self.delay:
            self.bar = _make_bar(self.description, self.total)
        if self.bar is not None:
            self.bar.update_to(self.done)
        return False

    def update(self, n: int = 1) -> bool:
        return self.update_to(self.done + n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()


def progress_bar(iterable: Optional[Iterable], description: str, total: Optional[int] = None,
                 show: ProgressOption = None):
    """``iterable`` reporting its progress under the policy of ``Progress``.

    With ``iterable=None`` a ``Progress`` to advance by ``update(n)`` and
    ``close()``. ``show=False`` returns ``iterable`` unchanged (so ``None``
    stays ``None``).
    """
    if show is False:
        return iterable
    return Progress(description, total, show, iterable)


class ProgressSession:
    """Owns the C callback of one native call; use as a context manager.

    >>> with ProgressSession("gmw", progress=None) as session:   # doctest: +SKIP
    ...     _native.check(lib.relusv_gmw(..., session.callback, None))
    """

    def __init__(self, description: str, progress: ProgressOption = None, delay: float = DELAY):
        self.description = description
        self.option = progress
        self.progress = Progress(description, 0, progress, delay=delay)
        self.interrupted = False
        self.user_cancelled = False
        self.callback_error: Optional[BaseException] = None
        self.callback = _native.PROGRESS_FN(self._on_progress)
        self._previous_sigint = None

    def _on_progress(self, _user, done: int, total: int) -> int:
        # Runs with the GIL on the calling thread; a pending Ctrl-C runs
        # _on_sigint as this frame starts, and becomes a cancellation request.
        if self.interrupted:
            return 1
        try:
            if self.progress.update_to(int(done), int(total)):
                self.user_cancelled = True
                return 1
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
        self.progress.close()
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
    started afterwards run normally. Ctrl-C does the same (the SIGINT handler
    relusv installs over Python's default one). With nothing running it does
    nothing.

    Examples
    --------
    >>> import threading, numpy as np, relusv
    >>> x = np.ones((200_000, 500))
    >>> worker = threading.Thread(target=lambda: relusv.gmw(x, samples=2000))   # doctest: +SKIP
    >>> worker.start(); relusv.cancel_all(); worker.join()   # gmw raises CancelledError there  # doctest: +SKIP
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
