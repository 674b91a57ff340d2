"""Common mistakes are refused with one message in relusv's error family, not read wrongly."""
from __future__ import annotations

import numpy as np
import pytest
import relusv

torch = pytest.importorskip("torch")
import relusv.torch as rt  # noqa: E402
from torch import nn  # noqa: E402


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.randn(120, 6, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(1)
    y[:15] = (y[:15] + 1) % 3            # some misclassified points
    return model, x, y


def test_a_list_of_batches_is_refused_with_the_fix():
    rng = np.random.default_rng(0)
    batch1, batch2 = rng.normal(size=(100, 100)), rng.normal(size=(100, 100))
    with pytest.raises(relusv.InvalidInputError, match=r"list of 2 arrays .*np\.concatenate"):
        relusv.gmw([batch1, batch2])
    with pytest.raises(relusv.InvalidInputError, match="tuple of 1 arrays"):
        relusv.diameter((torch.ones(3, 4),))
    # what the message suggests is the set of all 200 points
    joined = np.concatenate([batch1, batch2])
    assert relusv.gmw(joined) == relusv.gmw(np.vstack([batch1, batch2]))
    # a list of points (rows) stays what it always was
    assert relusv.gmw([[0.0, 0.0], [3.0, 4.0]], samples=50) == relusv.gmw(np.array([[0.0, 0.0], [3.0, 4.0]]),
                                                                          samples=50)


def test_a_model_where_numbers_are_expected_points_at_analyze(mlp):
    model = mlp[0]
    for call in (lambda: relusv.gmw(model), lambda: relusv.diameter(model),
                 lambda: relusv.relu_singular_values(model[0]), lambda: relusv.singular_values(model[0])):
        with pytest.raises(relusv.InvalidTypeError, match=r"is a model \(.*relusv\.torch\.analyze"):
            call()


def test_analyze_and_monitor_without_labels_say_y_is_missing(mlp):
    model, x, _ = mlp
    for call in (lambda: rt.analyze(model, x, relu_bounds=False, progress=False), lambda: rt.Monitor(model, x),
                 lambda: rt.analyze(model, x.numpy(), relu_bounds=False, progress=False)):
        with pytest.raises(relusv.InvalidInputError, match="y is missing"):
            call()


def test_integer_inputs_get_a_clear_error(mlp):
    model, x, y = mlp
    for ints in ((x * 4).long(), (x.numpy() * 4).astype(np.int32)):
        with pytest.raises(relusv.InvalidTypeError, match=r"floating-point inputs.*astype\(np\.float32\)"):
            rt.analyze(model, ints, y, relu_bounds=False, progress=False)
        with pytest.raises(relusv.InvalidTypeError, match="floating-point inputs"):
            rt.Monitor(model, ints, y)


def test_integer_inputs_of_a_model_with_embeddings_are_left_to_the_model():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    tokens = torch.randint(0, 10, (60, 2), generator=torch.Generator().manual_seed(0))
    labels = model(tokens).argmax(1)
    labels[:10] = (labels[:10] + 1) % 3
    table = rt.analyze(model, tokens, labels, relu_bounds=False, repeats=2, progress=False)
    assert list(table["layer"]) == ["2", "4"]


def test_monitor_accepts_a_data_loader_as_analyze_does(mlp):
    model, x, y = mlp
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    from_loader = rt.Monitor(model, loader, repeats=2, samples=30)
    from_tensors = rt.Monitor(model, x, y, repeats=2, samples=30)
    from_loader.measure()
    from_tensors.measure()
    assert len(from_loader.history) > 10
    assert from_loader.history.to_pandas().equals(from_tensors.history.to_pandas())


def test_harmonic_prune_accepts_a_data_loader(mlp):
    model, x, y = mlp
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    from_loader = rt.harmonic_prune(model, loader, max_iterations=3, progress=False)
    from_tensors = rt.harmonic_prune(model, x, y, max_iterations=3, progress=False)
    assert [r["ranks"] for r in from_loader.history] == [r["ranks"] for r in from_tensors.history]
    assert rt.accuracy(model, loader) == rt.accuracy(model, x, y)
