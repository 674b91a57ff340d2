"""The report folder is replaced as a whole: never a mix of two runs, no leftovers after SIGTERM.

A child process writes a report through ``atomic.staged`` and pauses at each
named phase (``RELUSV_REPORT_PAUSE``); the test sends SIGTERM there. Before
the swap the previous report must remain exactly as it was, after it the new
one must be complete; in every case nothing but ``out`` is left beside it.
Problems with ``--out`` are refused in one line before any computation.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_sigint
from relusv.report import atomic
from relusv.report.errors import ReportInputError

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")

OLD = sorted(atomic.REPORT_FILES)   # the earlier run wrote every file (with --retrain)
NEW = sorted(atomic.REPORT_FILES - {"pruning_retrained.csv", "pruning_retrained.png"})

WRITER = """
import sys
from pathlib import Path
from relusv.report.atomic import check_out, pause, staged

run, out, names = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
if sys.argv[4:] == ["rename"]:   # the two-rename fallback of systems without an atomic exchange
    import relusv.report.atomic as atomic
    atomic._exchange = lambda a, b: False

def write(run, folder):
    for i, name in enumerate(names):
        (folder / name).write_text(run)
        if i == len(names) // 2:
            pause("writing")

check_out(out, str(out))
staged(write)(run, out)
"""


def start(run, out, names, env, phase=None, seconds=1.0, cwd=None, swap="exchange"):
    env = dict(env)
    if phase:
        env["RELUSV_REPORT_PAUSE"] = f"{phase}:{seconds}"
    return subprocess.Popen([sys.executable, "-c", WRITER, run, str(out), ",".join(names), swap], env=env,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, preexec_fn=default_sigint)


def wait_for_pause(proc, phase):
    line = proc.stderr.readline()
    assert line.strip() == f"relusv: paused at {phase}", line + proc.stderr.read()


def contents(out: Path) -> dict:
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


SWEEP = [(swap, phase) for swap in ("exchange", "rename") for phase in atomic.PHASES
         if swap == "rename" or phase != "previous-moved"]


@pytest.mark.parametrize("swap, phase", SWEEP)
def test_sigterm_at_every_phase_leaves_one_whole_report(tmp_path, subprocess_env, swap, phase):
    out = tmp_path / "r"
    assert start("old", out, OLD, subprocess_env).wait(timeout=60) == 0
    proc = start("new", out, NEW, subprocess_env, phase, swap=swap)
    wait_for_pause(proc, phase)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    got = contents(out)
    if phase in ("writing", "written"):       # before the swap: the previous report, untouched
        assert got == dict.fromkeys(OLD, "old")
    else:                                     # the swap runs with signals blocked: it completes
        assert got == dict.fromkeys(NEW, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["r"]   # no staging or previous folder left


@pytest.mark.parametrize("swap, phase", SWEEP)
def test_ctrl_c_at_every_phase_leaves_one_whole_report(tmp_path, subprocess_env, swap, phase):
    out = tmp_path / "r"
    assert start("old", out, OLD, subprocess_env).wait(timeout=60) == 0
    proc = start("new", out, NEW, subprocess_env, phase, swap=swap)
    wait_for_pause(proc, phase)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    got = contents(out)
    assert got == (dict.fromkeys(OLD, "old") if phase in ("writing", "written") else dict.fromkeys(NEW, "new"))
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_sigterm_while_writing_a_first_report_leaves_nothing(tmp_path, subprocess_env):
    out = tmp_path / "nested" / "r"
    proc = start("new", out, NEW, subprocess_env, "writing", seconds=30)
    wait_for_pause(proc, "writing")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert list((tmp_path / "nested").iterdir()) == []


def test_out_given_as_dot_replaces_the_current_folder(tmp_path, subprocess_env):
    out = tmp_path / "r"
    assert start("old", out, OLD, subprocess_env).wait(timeout=60) == 0
    proc = start("new", ".", NEW, subprocess_env, cwd=out)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert contents(out) == dict.fromkeys(NEW, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_the_cli_replaces_an_earlier_retrain_report_whole_and_survives_sigterm(tmp_path, subprocess_env):
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", W0=rng.normal(size=(6, 4)), W1=rng.normal(size=(3, 6)))
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(60, 4)), y=rng.integers(0, 3, 60))
    out = tmp_path / "r"
    out.mkdir()
    for name in OLD:   # an earlier report with --retrain files
        (out / name).write_text("old")
    argv = [sys.executable, "-m", "relusv", "report", "--model", str(tmp_path / "m.npz"), "--data",
            str(tmp_path / "d.npz"), "--out", str(out), "--quick", "--no-progress"]
    env = dict(subprocess_env, RELUSV_REPORT_PAUSE="writing:60")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_pause(proc, "writing")   # build.write has written the figures into the staging folder
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == -signal.SIGTERM
    assert contents(out) == dict.fromkeys(OLD, "old")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "m.npz", "r"]
    done = subprocess.run(argv, env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == NEW   # nothing of the earlier --retrain run survives
    assert all(p.read_bytes() != b"old" for p in out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "m.npz", "r"]


@pytest.mark.parametrize("case, fragment", [
    ("a file in the way", "exists and is not a folder"),
    ("a file as its parent", "is in the way and is not a folder"),
    ("a folder of other files", "holds files that are not a relusv report's (e.g. notes.txt)"),
    ("a folder inside a report", "holds files that are not a relusv report's (e.g. sub)"),
    ("not writable", "cannot write the report to"),
])
def test_out_problems_exit_2_before_any_computation(tmp_path, capsys, case, fragment):
    from relusv.cli import main

    out = tmp_path / "r"
    if case == "a file in the way":
        out.write_text("mine")
    elif case == "a file as its parent":
        (tmp_path / "f").write_text("mine")
        out = tmp_path / "f" / "r"
    elif case == "a folder of other files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "a folder inside a report":
        out.mkdir()
        (out / "report.json").write_text("{}")
        (out / "sub").mkdir()
    else:
        out = Path("/proc/relusv-report")
    started = time.perf_counter()
    # --model names no file: the --out check must come first.
    code = main(["report", "--model", str(tmp_path / "missing.npz"), "--data", str(tmp_path / "missing.npz"),
                 "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert time.perf_counter() - started < 30
    if case == "a folder of other files":
        assert (out / "notes.txt").read_text() == "mine"


def test_the_exchange_is_atomic_where_the_system_offers_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not atomic._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here (the two-rename fallback is tested)")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_a_mount_point_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    real_stat = os.stat

    def stat(path, *args, **kwargs):   # out on another device than its parent, as a mount point is
        s = real_stat(path, *args, **kwargs)
        if Path(path) == out:
            return os.stat_result((*s[:2], s.st_dev + 1, *s[3:]))
        return s

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(ReportInputError, match="is a mount point"):
        atomic.check_out(out, "r")
