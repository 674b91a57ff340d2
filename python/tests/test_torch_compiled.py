"""A model wrapped by ``torch.compile`` keeps its layer names (no ``_orig_mod.`` prefix) in ``analyze``,
``Monitor`` and ``harmonic_prune``, and gives the same numbers as the plain model."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import Monitor, analyze, discover, harmonic_prune  # noqa: E402
from relusv.torch._layers import unwrap  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 4, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()


@pytest.fixture
def compiled():
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available in this torch")
    try:
        wrapped = torch.compile(model())
    except Exception as error:  # e.g. an unsupported Python version
        pytest.skip(f"torch.compile is unavailable here: {error}")
    assert type(wrapped).__name__ == "OptimizedModule"
    assert [n for n, _ in wrapped.named_modules()][1] == "_orig_mod"
    return wrapped


def test_unwrap_removes_the_compiled_wrapper(compiled):
    inner = unwrap(compiled)
    assert inner is compiled._orig_mod
    assert unwrap(nn.DataParallel(compiled)) is inner
    assert [layer.name for layer in discover(inner).layers] == ["0", "2", "4"]


def test_names_and_numbers_equal_the_plain_model(compiled):
    x, y = data()
    plain = analyze(model(), x, y, relu_bounds=False, repeats=2, samples=30)
    wrapped = analyze(compiled, x, y, relu_bounds=False, repeats=2, samples=30)
    assert list(wrapped["layer"]) == ["0", "2", "4"] == list(plain["layer"])
    np.testing.assert_array_equal(wrapped["sigma_0"].to_numpy(), plain["sigma_0"].to_numpy())
    records = Monitor(compiled, x, y, samples=30).measure()
    assert records == Monitor(model(), x, y, samples=30).measure()
    assert {r["layer"] for r in records} == {"0", "2"}   # the ReLU layers, by their own names
    result = harmonic_prune(compiled, x, y, max_iterations=1)
    assert result.layers == ["0", "2"]   # the hidden layers, by their own names
