"""One check of class labels for ``analyze``, ``Monitor``, ``harmonic_prune`` and the report.

Float labels are accepted only when finite and integral and within
``[0, classes)``; otherwise every entry point raises ``InvalidInputError``
naming the first offending entry (never truncating ``y + 0.9`` to ``y``, never
scoring NaN as a wrong answer). Integral float labels give exactly the
results of the same integer labels.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import relusv  # noqa: E402
from relusv import _validation  # noqa: E402
from relusv.torch import Monitor, analyze, harmonic_prune  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def data(n=60):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def bad_labels(case):
    _, y = data()
    y = y.double()
    if case == "fraction":
        return y + 0.9, r"got 0\.9 at position 0|got 1\.9 at position 0|got 2\.9 at position 0"
    y[7] = {"nan": float("nan"), "inf": float("inf"), "out of range": 3.0, "negative": -1.0}[case]
    fragment = {"nan": "got nan at position 7", "inf": "got inf at position 7",
                "out of range": r"must lie in \[0, 2\], got 3\.0 at position 7",
                "negative": r"must lie in \[0, 2\], got -1\.0 at position 7"}[case]
    return y, fragment


CASES = ["fraction", "nan", "inf", "out of range", "negative"]
ENTRY_POINTS = {
    "analyze": lambda x, y: analyze(model(), x, y, relu_bounds=False, repeats=1, samples=20),
    "Monitor": lambda x, y: Monitor(model(), x, y, samples=20).measure(),
    "harmonic_prune": lambda x, y: harmonic_prune(model(), x, y, max_iterations=1),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_bad_float_labels_are_refused_by_every_entry_point(entry, case):
    x, _ = data()
    y, fragment = bad_labels(case)
    with pytest.raises(relusv.InvalidInputError, match=fragment):
        ENTRY_POINTS[entry](x, y)


def test_negative_integer_labels_are_refused():
    x, y = data()
    y[4] = -2
    for entry in ENTRY_POINTS.values():
        with pytest.raises(relusv.InvalidInputError, match=r"must lie in \[0, 2\], got -2 at position 4"):
            entry(x, y)


def test_integral_float_labels_score_as_the_integers():
    x, y = data()
    as_int = analyze(model(), x, y, relu_bounds=False, repeats=1, samples=20)
    as_float = analyze(model(), x, y.float(), relu_bounds=False, repeats=1, samples=20)
    assert as_int.attrs["accuracy"] == as_float.attrs["accuracy"]
    np.testing.assert_array_equal(as_int.attrs["correct_mask"], as_float.attrs["correct_mask"])
    with torch.no_grad():   # the accuracy is the argmax oracle's, in both cases
        want = float((model()(x).argmax(1) == y).double().mean())
    assert as_float.attrs["accuracy"] == pytest.approx(want, abs=0)


@pytest.mark.parametrize("case", CASES)
def test_the_report_refuses_them_in_one_line(tmp_path, capsys, case):
    from relusv.cli import main

    x, _ = data()
    y, fragment = bad_labels(case)
    np.savez(tmp_path / "m.npz", W0=np.ones((8, 4)), W1=np.ones((3, 8)))
    np.savez(tmp_path / "d.npz", X=x.numpy(), y=y.numpy())
    code = main(["report", "--model", str(tmp_path / "m.npz"), "--data", str(tmp_path / "d.npz"), "--out",
                 str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "labels y" in err, err
    import re

    assert re.search(fragment, err), err


def test_the_check_itself():
    np.testing.assert_array_equal(_validation.labels(np.array([0.0, 2.0, 1.0]), 3), [0, 2, 1])
    assert _validation.labels(np.array([2.0]), 3).dtype == np.int64
    assert _validation.labels(np.array([5, 0]), None).tolist() == [5, 0]   # no range without classes
    assert _validation.labels(np.array([True, False]), 2).tolist() == [1, 0]
    with pytest.raises(relusv.InvalidTypeError, match="complex"):
        _validation.labels(np.array([1j]), 2)
    with pytest.raises(relusv.InvalidInputError, match="got 1.5 at position 1"):
        _validation.labels(np.array([1.0, 1.5]), None)
