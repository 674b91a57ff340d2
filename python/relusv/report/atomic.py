"""The report folder replaced as a whole: staged beside the target, swapped in by renames.

``check_out`` runs before any computation and refuses, with one line, an
``--out`` that cannot be replaced: a file in the way, a folder holding files
that are not a report's (they would be lost), a mount point (the swap renames
folders, which cannot cross file systems), a place where no folder can be
created. ``staged`` then wraps the writer:

1. the report is written into ``.<name>.staging-<id>`` beside ``out`` (same
   parent, hence the same file system);
2. with SIGINT / SIGTERM / SIGHUP blocked, the staging folder and an existing
   ``out`` are exchanged in one atomic step (``renameat2(RENAME_EXCHANGE)``;
   where the system lacks it, ``out`` is renamed to ``.<name>.previous-<id>``
   and the staging folder to ``out``), and the previous report is removed;
3. SIGTERM and SIGHUP while writing remove the staging folder and end the
   process by the same signal; any failure, and Ctrl-C (``KeyboardInterrupt``),
   remove it too.

At every moment ``out`` is the previous report or the new one (with the
fallback, briefly absent between its two renames), never a mix;
files of an earlier run (e.g. ``pruning_retrained.*``) do not survive; no
hidden folder is left behind.

``RELUSV_REPORT_PAUSE=<phase>:<seconds>`` sleeps at a named phase (``writing``,
``written``, ``previous-moved`` (fallback only), ``swapped``) after printing
``relusv: paused at <phase>`` on stderr: a hook for tests that send signals at
each point.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from .errors import ReportInputError

REPORT_FILES = frozenset({
    "index.html", "report.json", "schema.json", "subsets.npz", "layers.csv", "spectra.csv", "gmw.csv",
    "pruning.csv", "pruning_retrained.csv", "spectra.png", "gmw.png", "pruning.png", "pruning_retrained.png"})
"""Every file a report folder may hold (``build.write``); a folder holding anything else is not replaced."""

PHASES = ("writing", "written", "previous-moved", "swapped")
_SIGNALS = tuple(s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None)


def pause(phase: str) -> None:
    """The test hook: sleep at ``phase`` when ``RELUSV_REPORT_PAUSE`` names it."""
    name, _, seconds = os.environ.get("RELUSV_REPORT_PAUSE", "").partition(":")
    if name == phase:
        print(f"relusv: paused at {phase}", file=sys.stderr, flush=True)
        time.sleep(float(seconds or 30))


def _is_report_folder(out: Path) -> bool:
    entries = list(out.iterdir())
    return not entries or ("report.json" in {p.name for p in entries} and
                           all(p.name in REPORT_FILES and p.is_file() and not p.is_symlink() for p in entries))


def check_out(out: Path, label: str) -> None:
    """Refuses an ``--out`` the report could not replace as a whole; called before any computation.

    Tries to make a folder where the staging folder will be (or in the nearest existing parent).

    Raises
    ------
    ReportInputError
        Naming ``label`` (as the user wrote it) and the problem.
    """
    out = Path(os.path.abspath(out))
    if not out.name:
        raise ReportInputError(f"--out {label}: the report needs a folder of its own, not the file system root")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ReportInputError(f"--out {label} exists and is not a folder")
    if out.exists():
        if not _is_report_folder(out):
            foreign = sorted(p.name for p in out.iterdir() if p.name not in REPORT_FILES or not p.is_file())
            raise ReportInputError(f"--out {label} holds files that are not a relusv report's (e.g. "
                                   f"{(foreign or ['no report.json'])[0]}); the report replaces the whole folder: "
                                   "give a new or empty folder, or a previous report's")
        if os.stat(out).st_dev != os.stat(out.parent).st_dev:
            raise ReportInputError(f"--out {label} is a mount point; the report replaces the whole folder, which "
                                   "cannot cross file systems: give a folder inside it")
        if not os.access(out, os.W_OK | os.X_OK):
            raise ReportInputError(f"--out {label}: the previous report there cannot be removed (no write "
                                   "permission)")
    anchor = out.parent
    while not anchor.exists() and anchor != anchor.parent:
        anchor = anchor.parent
    if not anchor.is_dir():
        raise ReportInputError(f"--out {label}: {anchor} is in the way and is not a folder")
    try:   # a folder can be made where the staging folder will be (the missing parents are made later)
        probe = anchor / _sibling(out, "check").name
        with _signals_blocked():   # no probe folder left behind by a signal
            probe.mkdir()
            probe.rmdir()
    except OSError as error:
        raise ReportInputError(f"cannot write the report to {label}: {error.strerror or error}") from None


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Staging:
    """The staging folder the termination handler removes (None once it has become ``out``)."""

    path = None


@contextlib.contextmanager
def _terminate_cleanly(staging: _Staging) -> Iterator[None]:
    """SIGTERM / SIGHUP remove the staging folder, then end the process by the same signal.

    Installed in the main thread only (elsewhere the handlers stay as they are). The swap runs with the
    signals blocked, so a signal during it is handled once ``out`` is whole again.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if staging.path is not None:
            shutil.rmtree(staging.path, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)

    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
              if s is not None and signal.getsignal(s) is not signal.SIG_IGN]   # an ignored signal stays ignored
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _exchange(a: Path, b: Path) -> bool:
    """Swaps the folders ``a`` and ``b`` in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or the file system does not offer it."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap(staging: Path, out: Path) -> None:
    """``staging`` becomes ``out``: exchanged with a previous ``out`` in one step where the system allows
    it, else the previous ``out`` is moved aside first; the previous report is removed after."""
    if not out.exists():
        staging.rename(out)
        return
    if _exchange(staging, out):   # staging now holds the previous report
        pause("swapped")
        shutil.rmtree(staging)
        return
    previous = _sibling(out, "previous")
    out.rename(previous)
    pause("previous-moved")
    try:
        staging.rename(out)
    except OSError:
        previous.rename(out)
        raise
    pause("swapped")
    shutil.rmtree(previous)


def staged(write: Callable[..., object]) -> Callable[..., None]:
    """``write(*contents, folder)`` made all-or-nothing for ``out`` (the last argument).

    ``write`` fills a fresh staging folder beside ``out``; when it returns, the folder replaces ``out``
    as a whole (module docstring). On any failure or signal ``out`` stays as it was and the staging
    folder is removed.
    """

    def write_staged(*args) -> None:
        *contents, out = args
        out = Path(os.path.abspath(out))   # "." and "a/.." name their folder
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = _Staging()
        with _terminate_cleanly(staging):
            staging.path = _sibling(out, "staging")
            try:
                staging.path.mkdir()   # with the umask's permissions, unlike mkdtemp
                write(*contents, staging.path)
                pause("written")
                with _signals_blocked():
                    _swap(staging.path, out)
                    staging.path = None
            finally:
                with _signals_blocked():
                    if staging.path is not None:
                        shutil.rmtree(staging.path, ignore_errors=True)
                        staging.path = None

    return write_staged
