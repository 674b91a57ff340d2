"""Cancellation: Ctrl-C stops a long native call within about a block of
work, and a progress callable can cancel; nothing is left half-updated."""
from __future__ import annotations

import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest
import relusv
from conftest import default_sigint

# About 200 GFLOP in blocks of 52 points (2^20 / S, S = 20,000): many seconds of work,
# a progress callback every few tens of milliseconds. "started" is printed
# from the first callback, so the signal arrives during the native loop.
LONG_RUN = textwrap.dedent("""
    import numpy as np, relusv
    x = np.random.default_rng(0).normal(size=(20000, 250))
    def announce(done, total, said=[]):
        if done > 0 and not said:  # the first block is done
            said.append(True)
            print("started", flush=True)
    relusv.gmw(x, samples=20000, progress=announce)
    print("finished", flush=True)
""")


def interrupt_after_start(proc, delay=0.3):
    assert proc.stdout.readline().strip() == "started"
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "finished" not in out
    return time.monotonic() - sent, err


def test_ctrl_c_raises_keyboard_interrupt_quickly(python, subprocess_env):
    proc = subprocess.Popen([python, "-c", LONG_RUN], env=subprocess_env, preexec_fn=default_sigint, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    elapsed, err = interrupt_after_start(proc)
    # The traceback ends in KeyboardInterrupt (not in CancelledError, nor an
    # "exception ignored on calling ctypes callback" with the run going on).
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
    assert "ignored" not in err and "CancelledError" not in err, err
    assert proc.returncode != 0
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"


def test_ctrl_c_in_the_command_line_tool(tmp_path, python, subprocess_env):
    path = tmp_path / "big.npy"  # about 400 GFLOP with S = 20,000: far longer than the delay
    np.save(path, np.random.default_rng(0).normal(size=(40000, 250)))
    # The baseline: the same process (modules, data) interrupted while Python sleeps, so that
    # its signal-to-exit time is the interpreter's own reaction and shutdown under the
    # machine's present load; the native loop may add about a second to that, not the run.
    baseline = textwrap.dedent(f"""
        import sys, time
        import numpy as np
        from relusv.cli import main
        x = np.load({str(path)!r})
        print("started", flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("relusv: interrupted", file=sys.stderr)
            sys.exit(130)
    """)
    script = textwrap.dedent(f"""
        import sys
        from relusv.cli import main
        print("started", flush=True)
        sys.exit(main(["gmw", {str(path)!r}, "--samples", "20000"]))
    """)
    runs = {}
    for name, code in (("baseline", baseline), ("cli", script)):
        proc = subprocess.Popen([python, "-c", code], env=subprocess_env, preexec_fn=default_sigint, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        elapsed, err = interrupt_after_start(proc, delay=1.5)
        assert proc.returncode == 130, err
        assert err.strip() == "relusv: interrupted"
        runs[name] = elapsed
    limit = 1.5 + 2 * runs["baseline"]
    assert runs["cli"] < limit, f"took {runs['cli']:.2f} s to stop (baseline {runs['baseline']:.2f} s)"


def test_progress_callable_returning_true_cancels(rng):
    x = rng.normal(size=(4000, 10))
    calls = []

    def stop_at_second_call(done, total):
        calls.append(done)
        return len(calls) >= 2

    with pytest.raises(relusv.CancelledError, match="cancelled") as info:
        relusv.gmw(x, samples=2**14, progress=stop_at_second_call)  # blocks of 64 rows
    assert info.value.status_name == "RELUSV_ERROR_CANCELLED"
    assert len(calls) == 2 and calls[-1] < 4000


def test_cancelled_update_leaves_the_accumulator_unchanged(rng):
    acc = relusv.GMWAccumulator(10, samples=2**14, seed=1).update(rng.normal(size=(100, 10)))
    before = acc.to_bytes()
    with pytest.raises(relusv.CancelledError):
        acc.update(rng.normal(size=(4000, 10)) * 10, progress=lambda done, total: done >= 128)
    assert acc.to_bytes() == before and acc.points == 100


def test_keyboard_interrupt_inside_the_callback_becomes_keyboard_interrupt(rng):
    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        relusv.gmw(rng.normal(size=(1000, 4)), samples=2**14, progress=interrupt)
    assert relusv.gmw(np.eye(3)) > 0  # the library is still usable


def test_exception_in_the_callback_is_re_raised(rng):
    def broken(done, total):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        relusv.gmw(rng.normal(size=(1000, 4)), samples=2**14, progress=broken)
