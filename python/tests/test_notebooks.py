"""The example notebooks (examples/*.ipynb) execute, draw their figures as images and warn about nothing.

Each notebook runs again in a fresh kernel (nbclient). Checked: no cell
raises, every cell that calls ``relusv.plot`` has a PNG output (the figures
display without ``%matplotlib``), nothing is written to stderr (no warning
boxes, e.g. tqdm's "IProgress not found"), and progress appears at most as
one updating text line per call. The stored notebooks hold the same kinds of
outputs.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("torch")
pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def check_outputs(nb, name: str) -> None:
    figures = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kinds = [o.output_type for o in cell.outputs]
        assert "error" not in kinds, (name, cell.source)
        stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not stderr, (name, cell.source, stderr)
        if "relusv.plot." in cell.source:
            assert any("image/png" in o.get("data", {}) for o in cell.outputs), (name, cell.source, cell.outputs)
            figures += 1
        progress = [o for o in cell.outputs if o.output_type == "display_data"
                    and o.data.get("text/plain", "").count("[") and "%" in o.data.get("text/plain", "")]
        assert len(progress) <= 2, (name, "progress should be one updating line per call", progress)
    return figures


def test_the_examples_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"monitor_training.ipynb", "analyze_cnn.ipynb", "harmonic_pruning.ipynb",
            "gmw_c_and_python.ipynb"} <= names, names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_with_figures_and_no_warnings(path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)      # as in a user's Jupyter: no backend chosen
    stored = nbformat.read(path, as_version=4)
    check_outputs(stored, f"{path.name} (stored)")
    nb = copy.deepcopy(stored)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    figures = check_outputs(nb, path.name)
    assert figures == sum("relusv.plot." in c.source for c in nb.cells if c.cell_type == "code")
