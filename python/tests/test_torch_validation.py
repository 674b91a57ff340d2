"""relusv.torch refuses NaN inputs and out-of-range labels, and monitors bfloat16 models."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import relusv  # noqa: E402
from relusv.torch import Monitor, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to(dtype)


def data(n=60):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_monitor_on_a_bfloat16_model_measures_like_float32():
    x, y = data()
    history = Monitor(model(torch.bfloat16), x, y, samples=50).measure()
    sv = [r for r in history if r["quantity"] == "singular_value"]
    assert sv, "no singular values recorded"
    # The bfloat16 weights, widened exactly to float32, have these singular values (NumPy oracle).
    w = model(torch.bfloat16)[0].weight.detach().float().numpy().astype(np.float64)
    want = np.linalg.svd(w, compute_uv=False)
    got = sorted((r["value"] for r in sv if r["layer"] == "0"), reverse=True)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_inputs_are_refused_by_monitor_and_pruning(bad):
    x, y = data()
    x[17, 2] = float(bad)
    with pytest.raises(relusv.InvalidInputError, match=r"NaN or infinity at index \(17, 2\)"):
        Monitor(model(), x, y).measure()
    with pytest.raises(relusv.InvalidInputError, match="NaN or infinity"):
        harmonic_prune(model(), x, y, max_iterations=1)


@pytest.mark.parametrize("label", [3, -1, 100])
def test_out_of_range_labels_are_refused(label):
    x, y = data()
    y[5] = label
    with pytest.raises(relusv.InvalidInputError, match=r"labels must lie in \[0, 2\]"):
        Monitor(model(), x, y).measure()
    with pytest.raises(relusv.InvalidInputError, match=r"labels must lie in \[0, 2\]"):
        harmonic_prune(model(), x, y, max_iterations=1)


@pytest.mark.parametrize("slope", [-0.1, 1.0, 1.5])
def test_a_leaky_relu_outside_the_relu_family_is_listed_not_fatal(slope):
    """A leaky ReLU is one of the ReLU family for a slope in [0, 1) only (MATH.md section 1): with another slope
    the layer is listed with its reason and the rest of the table is computed."""
    from relusv.torch import analyze

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(slope), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
    x, y = data()
    table = analyze(net, x, y, progress=False)
    rows = table.set_index("layer")
    assert rows.loc["0", "relu_bounds"] == f"not a ReLU layer (activation: leaky_relu with slope {slope:g}, " \
                                           "outside [0, 1))"
    assert rows.loc["2", "relu_bounds"] == "computed"
    assert np.isfinite(rows.loc["0", "gmw_correct"])    # widths are still measured after it


@pytest.mark.parametrize("trim", [0.5, 1.0, -0.1])
def test_analyze_refuses_a_trim_outside_its_range(trim):
    from relusv.torch import analyze

    x, y = data()
    with pytest.raises(relusv.InvalidInputError, match=r"trim must lie in \[0, 0.5\)"):
        analyze(model(), x, y, progress=False, trim=trim)


def test_a_convolution_with_no_output_position_is_refused():
    from relusv.torch import relu_singular_values

    with pytest.raises(relusv.InvalidInputError, match="no output position on a 3 x 3 input"):
        relu_singular_values(nn.Conv2d(3, 6, 5), torch.randn(4, 3, 3, 3), seed=0)


class _TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.fc = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.fc(h), h


def test_a_model_returning_a_tuple_runs_with_predict_and_names_it_without():
    from relusv.torch import analyze

    torch.manual_seed(0)
    x, y = data()
    net = _TupleOut()
    table = analyze(net, x, y, predict=lambda out: out[0].argmax(1), progress=False, relu_bounds=False)
    assert list(table["layer"]) == ["a", "fc"]
    with pytest.raises(relusv.InvalidTypeError, match="returns a tuple.*predict="):
        analyze(net, x, y, progress=False, relu_bounds=False)


def test_analyze_on_a_bfloat16_model_measures_its_layers():
    from relusv.torch import analyze

    x, y = data()
    table = analyze(model(torch.bfloat16), x.bfloat16(), y, progress=False, relu_bounds=False)
    assert list(table["layer"]) == ["0", "2"]
    assert np.isfinite(table["gmw_correct"]).all()


def test_an_unknown_relu_option_is_named():
    from relusv.torch import analyze

    x, y = data()
    with pytest.raises(relusv.InvalidInputError, match="relu_options: unknown option.*bogus"):
        analyze(model(), x, y, progress=False, relu_options={"bogus": 1})


def test_layer_lists_string_labels_and_wrong_shapes_get_relusv_errors():
    from relusv.torch import analyze

    x, y = data()
    with pytest.raises(relusv.InvalidTypeError, match="layers must be a list"):
        analyze(model(), x, y, layers="02", progress=False)
    with pytest.raises(relusv.InvalidInputError, match="'0' more than once"):
        analyze(model(), x, y, layers=["0", "0"], progress=False)
    with pytest.raises(relusv.InvalidTypeError, match="string labels"):
        analyze(model(), x, np.array(["a"] * len(x)), progress=False)
    with pytest.raises(relusv.InvalidInputError, match=r"forward pass fails on probe inputs of shape \(60, 5\)"):
        analyze(model(), torch.randn(60, 5), y, progress=False)


class _Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, and its F.relu is invisible to registration order."""

    def __init__(self):
        super().__init__()
        self.a, self.fc = nn.Linear(4, 8), nn.Linear(8, 3)

    def forward(self, x):
        h = self.a(x)
        if h.sum() > 1e9:
            h = h * 2
        return self.fc(torch.nn.functional.relu(h))


def test_unbounded_rows_say_why():
    """A ReLU layer whose bounds are not computed says why (its notes), and a layer of an untraceable model
    says that functional activations were not seen, instead of only 'activation: none'."""
    from relusv.torch import analyze

    x, y = data()
    with pytest.warns(UserWarning, match="does not trace"):
        table = analyze(_Untraceable(), x, y, progress=False)
    assert "registration order" in table.loc[0, "relu_bounds"] and "F.relu" in table.loc[0, "relu_bounds"]
    torch.manual_seed(0)
    same = nn.Sequential(nn.Conv2d(3, 4, 2, padding="same"), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    images = torch.randn(30, 3, 6, 6)
    table = analyze(same, images, torch.randint(0, 3, (30,)), progress=False)
    assert table.loc[0, "activation"] == "relu"
    assert "not computed" in table.loc[0, "relu_bounds"] and "padding='same'" in table.loc[0, "relu_bounds"]


def test_a_dataset_of_dicts_is_refused_by_name():
    from relusv.torch import analyze

    class Samples(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"image": torch.zeros(4), "label": 0}

    with pytest.raises(relusv.InvalidTypeError, match=r"\(input, target\) pairs, got a dict \(keys image, label\)"):
        analyze(model(), Samples(), progress=False)


def test_target_matrices_must_be_one_hot_or_probabilities():
    """A matrix of targets is read as one-hot rows or class probabilities (their argmax); any other matrix
    (random integers) is refused rather than argmaxed."""
    from relusv.torch import analyze

    x, y = data()
    one_hot = torch.nn.functional.one_hot(y, 3)
    base = analyze(model(), x, y, progress=False, relu_bounds=False)
    for targets in (one_hot, one_hot.float() * 0.9 + 0.1 / 3):
        same = analyze(model(), x, targets, progress=False, relu_bounds=False)
        assert same["gmw_correct"].tolist() == base["gmw_correct"].tolist()
    with pytest.raises(relusv.InvalidInputError, match="neither one-hot rows nor class probabilities"):
        analyze(model(), x, torch.randint(0, 5, (len(x), 3)), progress=False)


def test_a_group_size_below_two_is_named_as_the_reason():
    from relusv.torch import analyze

    x, y = data()
    table = analyze(model(), x, y, progress=False, group_size=1, relu_bounds=False)
    assert table.attrs["comparison"] == "group_size = 1: a width needs sets of at least 2 points"


def test_a_one_shot_iterator_is_refused_up_front():
    from relusv.torch import analyze

    x, y = data()
    batches = ((x[i:i + 20], y[i:i + 20]) for i in range(0, len(x), 20))
    with pytest.raises(relusv.InvalidTypeError, match="one-shot iterator \\(generator\\), but it is read twice"):
        analyze(model(), batches, progress=False)
