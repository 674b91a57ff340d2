"""The one progress policy (relusv._progress): who shows what, where, and when."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import relusv
from relusv import _progress


def test_progress_false_and_pipes_show_nothing(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not _progress.shows_progress(None)
    assert not _progress.shows_progress(False)
    assert _progress.shows_progress(True)
    relusv.diameter(np.random.default_rng(0).normal(size=(3000, 50)), progress=False)
    relusv.diameter(np.random.default_rng(0).normal(size=(3000, 50)))
    assert capsys.readouterr().err == ""


def test_progress_true_shows_a_terminal_bar_at_once(capsys):
    bar = _progress.Progress("work", 4, True)
    for _ in range(4):
        bar.update()
    bar.close()
    err = capsys.readouterr().err
    assert err.startswith("\rwork") and "/4" in err     # drawn at the first update, not after a delay


def test_a_callable_gets_done_and_total_and_can_cancel():
    seen = []

    def report(done, total):
        seen.append((done, total))
        return done >= 2

    bar = _progress.Progress("work", 5, report)
    assert [bar.update() for _ in range(3)] == [False, True, True]
    assert seen == [(1, 5), (2, 5), (3, 5)]
    calls = []
    with pytest.raises(relusv.CancelledError):
        relusv.gmw(np.ones((20_000, 200)), samples=400, progress=lambda d, t: calls.append((d, t)) or True)
    assert calls and calls[0][1] > 0


def test_an_iterable_is_passed_through_and_false_returns_it_unchanged():
    items = [1, 2, 3]
    assert _progress.progress_bar(items, "x", show=False) is items
    assert _progress.progress_bar(None, "x", show=False) is None
    assert list(_progress.progress_bar(items, "x", show=None)) == items


class _Handle:
    def __init__(self):
        self.texts = []

    def update(self, obj):
        self.texts.append(obj.data)


@pytest.fixture
def notebook_kernel(monkeypatch):
    """A stand-in IPython kernel: ``get_ipython().kernel`` exists, ``display`` records its updates."""
    pytest.importorskip("IPython")
    import IPython
    import IPython.display

    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    handles = []

    def display(obj, display_id=None):
        handles.append(_Handle())
        handles[-1].texts.append(obj.data)
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", display)
    return handles


def test_in_a_notebook_without_ipywidgets_progress_is_one_updating_text_line(notebook_kernel, monkeypatch,
                                                                              capsys):
    monkeypatch.setattr(_progress, "_has_module", lambda name: False)
    assert _progress.in_notebook() and _progress.shows_progress(None)
    bar = _progress.Progress("pruning", 10, None, delay=0.0)
    for _ in range(10):
        bar.update()
    bar.close()
    assert len(notebook_kernel) == 1                 # one output, updated in place
    assert notebook_kernel[0].texts[-1].startswith("pruning: [#########################] 100% (10/10")
    assert capsys.readouterr().err == ""             # no warning box, nothing on stderr


def test_native_calls_report_to_the_notebook_line(notebook_kernel, monkeypatch, capsys):
    monkeypatch.setattr(_progress, "_has_module", lambda name: False)
    x = np.random.default_rng(0).normal(size=(4000, 64))
    assert relusv.diameter(x, progress=True) == relusv.diameter(x, progress=False)
    assert len(notebook_kernel) == 1                 # the library's callbacks updated one line
    assert notebook_kernel[0].texts[-1].startswith("diameter: [")
    assert "100%" in notebook_kernel[0].texts[-1]
    assert capsys.readouterr().err == ""


def test_in_a_notebook_with_ipywidgets_progress_is_tqdms_widget(notebook_kernel, monkeypatch):
    pytest.importorskip("tqdm")
    made = []

    class Widget:
        def __init__(self, description, total, widget=False):
            made.append(widget)

        def update_to(self, done):
            pass

        def close(self):
            pass

    monkeypatch.setattr(_progress, "_has_module", lambda name: True)
    monkeypatch.setattr(_progress, "_TqdmBar", Widget)
    bar = _progress.Progress("x", 2, True)
    bar.update()
    bar.close()
    assert made == [True] and notebook_kernel == []
