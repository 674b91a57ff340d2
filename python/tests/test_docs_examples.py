"""Every Python block of the README and of the user guide runs as written.

The ```python blocks of one file run in order in one namespace, as a reader
would paste them into one session. A block that is not meant to run is marked
by the line ``<!-- not-run: reason -->`` right before it (kept few).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "README.md"] + sorted((ROOT / "docs" / "guide").glob("*.md"))
BLOCK = re.compile(r"(<!-- not-run:[^>]*-->\n)?```python\n(.*?)```", re.S)


def python_blocks(path: Path):
    """``(line, code, runnable)`` of every ```python block of ``path``."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(2)) + 1, m.group(2), m.group(1) is None) for m in BLOCK.finditer(text)]


def test_the_readme_and_the_guide_have_examples():
    assert (ROOT / "README.md").exists()
    counts = {p.name: sum(runnable for _, _, runnable in python_blocks(p)) for p in FILES if p.exists()}
    assert counts.get("README.md", 0) >= 3, counts
    skipped = sum(not runnable for p in FILES if p.exists() for _, _, runnable in python_blocks(p))
    assert skipped <= 3, "blocks marked not-run should stay few"


@pytest.mark.parametrize("path", [p for p in FILES if p.exists() and python_blocks(p)],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run_as_written(path, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    import torch

    monkeypatch.chdir(tmp_path)              # files a block writes land in a scratch directory
    monkeypatch.setenv("MPLBACKEND", "Agg")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for line, code, runnable in python_blocks(path):
            if runnable:
                exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
