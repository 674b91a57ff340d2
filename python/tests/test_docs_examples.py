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


def _documented():
    import relusv
    import relusv.datasets
    import relusv.plot

    return [relusv.gmw, relusv.diameter, relusv.effective_dimension, relusv.gaussian_to_spherical_factor,
            relusv.relu_singular_values, relusv.relu_fit_gradient, relusv.operator_gmw,
            relusv.singular_values, relusv.truncated_svd, relusv.conv_singular_values,
            relusv.plot.relu_spectrum, *[getattr(relusv.datasets, n) for n in relusv.datasets.__all__]]


def test_docstring_examples_run_and_print_what_they_show():
    import doctest

    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    ran = 0
    for function in _documented():
        for test in finder.find(function, function.__name__, globs={}):
            ran += len(test.examples)
            runner.run(test)
    assert ran >= 15
    assert runner.failures == 0, f"{runner.failures} docstring examples failed (see the output above)"


def _torch_api():
    """The public API of ``relusv.torch`` and ``relusv.memory``: ``(name, object)`` pairs."""
    import relusv.memory
    import relusv.torch

    return [(n, getattr(relusv.torch, n)) for n in relusv.torch.__all__] + \
        [(n, getattr(relusv.memory, n)) for n in ("set_memory_limit", "memory_limit")]


# Public objects whose numpydoc sections are still to be written; the test below fails once they have them.
SECTIONS_PENDING: set = set()


def _missing_sections(obj) -> list:
    """The numpydoc sections ``obj``'s docstring lacks: a function needs Parameters (if it takes any),
    Returns, Raises and Examples; a result record (dataclass) Attributes and Examples; another class
    Parameters, Raises and Examples."""
    import dataclasses
    import inspect

    doc = inspect.getdoc(obj) or ""
    if inspect.isclass(obj):
        wanted = ("Attributes", "Examples") if dataclasses.is_dataclass(obj) else ("Parameters", "Raises", "Examples")
    else:
        takes = bool(inspect.signature(obj).parameters)
        wanted = ("Parameters",) * takes + ("Returns", "Raises", "Examples")
    return [section for section in wanted if f"\n{section}\n---" not in doc]


def test_the_torch_api_has_the_numpydoc_sections():
    pytest.importorskip("torch")
    missing = {name: gaps for name, obj in _torch_api() if (gaps := _missing_sections(obj))}
    assert set(missing) == SECTIONS_PENDING, missing


def test_torch_docstring_examples_run_and_print_what_they_show():
    import doctest
    import warnings

    pytest.importorskip("torch")
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    ran = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small examples: the comparisons warn that no verdict is possible
        for name, obj in _torch_api():
            for test in finder.find(obj, name, globs={}):
                ran += sum("doctest: +SKIP" not in example.source for example in test.examples)
                runner.run(test)
    assert ran >= 40
    assert runner.failures == 0, f"{runner.failures} docstring examples failed (see the output above)"


def test_documented_functions_have_the_numpydoc_sections():
    import inspect

    import relusv.plot

    for function in _documented() + [getattr(relusv.plot, n) for n in relusv.plot.__all__]:
        doc = inspect.getdoc(function)
        for section in ("Parameters", "Returns", "Raises", "Examples"):
            assert f"\n{section}\n---" in doc, (function.__qualname__, section)
