"""``relusv report`` as an installed package meets it: a missing optional dependency is one line
naming the extra, and a failed run leaves no half-written report directory."""
from __future__ import annotations

import subprocess
import sys

import pytest
from relusv.report import atomic


def test_missing_matplotlib_is_one_line_naming_the_extra(tmp_path):
    out = tmp_path / "r"
    script = ("import sys; sys.modules['matplotlib'] = None; from relusv.cli import main; "
              f"sys.exit(main(['report', '--quick', '--no-progress', '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "relusv: error: the report needs matplotlib: pip install 'relusv[report]'\n"
    assert not out.exists()


def test_missing_scikit_learn_names_the_extra(tmp_path):
    script = ("import sys; sys.modules['sklearn'] = None; sys.modules['sklearn.datasets'] = None; "
              "from relusv.cli import main; "
              f"sys.exit(main(['report', '--quick', '--no-progress', '--out', {str(tmp_path / 'r')!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "pip install 'relusv[report]'" in proc.stderr, proc.stderr


def _fake_write(fail: bool):
    def write(report, split, out):
        assert out.name.startswith(".report.") and out.is_dir()  # a staging directory beside the target
        (out / "index.html").write_text("new")
        (out / "report.json").write_text("{}")
        if fail:
            raise OSError(28, "No space left on device")
    return write


def test_a_failed_write_leaves_no_directory(tmp_path):
    out = tmp_path / "nested" / "report"
    with pytest.raises(OSError):
        atomic.staged(_fake_write(fail=True))({}, None, out)
    assert not out.exists()
    assert list((tmp_path / "nested").iterdir()) == []  # no staging directory left behind


def test_a_failed_write_keeps_the_previous_report(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("old")
    with pytest.raises(OSError):
        atomic.staged(_fake_write(fail=True))({}, None, out)
    assert [p.name for p in out.iterdir()] == ["index.html"] and (out / "index.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_complete_write_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "index.html").write_text("old")
    (out / "pruning_retrained.csv").write_text("old")   # from an earlier run with --retrain
    atomic.staged(_fake_write(fail=False))({}, None, out)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "report.json"]
    assert (out / "index.html").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
