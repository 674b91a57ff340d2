"""Ctrl-C while a long native call runs in a worker thread ends that call within about a second."""
from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time

import pytest
from conftest import default_sigint

WORKER = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    import relusv

    rng = np.random.default_rng(0)
    inside = threading.Event()  # set by the first progress report: the native call is running

    def report(done, total):
        inside.set()

    w, x = rng.normal(size=(200, 120)), rng.normal(size=(2000, 120))
    big = rng.normal(size=(60000, 300)) if sys.argv[1] == "diameter" else rng.normal(size=(20000, 250))
    calls = {
        "gmw": lambda: relusv.gmw(big, samples=20000, progress=report),
        "relu_singular_values": lambda: relusv.relu_singular_values(w, X=x, max_steps=100000, threads=2,
                                                                    progress=report),
        "diameter": lambda: relusv.diameter(big, progress=report),
    }
    result = {}
    done = threading.Event()

    def work():
        try:
            calls[sys.argv[1]]()
            result["outcome"] = "finished"
        except BaseException as error:
            result["outcome"] = type(error).__name__
        result["ended"] = time.monotonic()
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    inside.wait()
    time.sleep(0.5)  # well inside the call (each takes far longer undisturbed)
    print("started", flush=True)
    try:
        worker.join()
    except KeyboardInterrupt:
        result["interrupted"] = time.monotonic()
        done.wait()  # (a join interrupted once is not reliable in every Python version)
    print(json.dumps(result), flush=True)
""")


def _interrupted(python, env, args, settle=0.0):
    """Runs ``python args``, sends SIGINT once it prints ``started`` (after ``settle`` seconds); returns its last
    output line as JSON and the seconds from the signal to the end of the process."""
    proc = subprocess.Popen([python, *args], env=env, preexec_fn=default_sigint, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "started", proc.stderr.read()[-2000:]
    time.sleep(settle)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    total = time.monotonic() - sent
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1]), total


@pytest.mark.parametrize("call", ["gmw", "relu_singular_values", "diameter"])
def test_ctrl_c_stops_a_call_in_a_worker_thread(python, subprocess_env, call):
    result, total = _interrupted(python, subprocess_env, ["-c", WORKER, call], settle=0.2)
    assert "interrupted" in result, result  # the main thread saw KeyboardInterrupt
    assert result["outcome"] == "CancelledError", result
    assert result["ended"] - result["interrupted"] < 1.0, result
    assert total < 2.0, f"the process took {total:.2f} s to end"


ANALYZE = textwrap.dedent("""
    import json, threading, time
    import torch
    from torch import nn
    from relusv.torch import analyze

    inside = threading.Event()   # set by the first progress report of a bound curve (on a pool thread)

    def report(done, total):
        inside.set()

    def announce():
        inside.wait()
        time.sleep(0.5)
        print("started", flush=True)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(32 * 16 * 16, 10)).eval()
    x, y = torch.randn(300, 3, 16, 16), torch.randint(0, 10, (300,))
    threading.Thread(target=announce, daemon=True).start()
    result = {}
    try:
        analyze(model, x, y, relu_options={"max_steps": 100000, "fit_stride": 1, "progress": report})
        result["outcome"] = "finished"
    except KeyboardInterrupt:
        result["outcome"] = "KeyboardInterrupt"
    result["workers"] = [t.name for t in threading.enumerate() if t.name.startswith("relusv-worker")]
    print(json.dumps(result), flush=True)
""")


def test_ctrl_c_stops_analyze_and_its_pool(python, subprocess_env):
    """The table's pool (``relusv._workers.NativeWorkers``): Ctrl-C in the main thread cancels the curves running
    on its threads and drops the queued ones; ``analyze`` raises KeyboardInterrupt and leaves no thread behind."""
    result, total = _interrupted(python, subprocess_env, ["-c", ANALYZE])
    assert result == {"outcome": "KeyboardInterrupt", "workers": []}, result
    assert total < 3.0, f"the process took {total:.2f} s to end"
