"""A caller's mistake in the PyTorch, report, pruning and analysis code raises relusv's own errors.

``relusv.errors.InvalidInputError`` (a ``ValueError``) and ``InvalidTypeError``
(a ``TypeError``) replace the plain built-ins, so ``except relusv.ReluSVError``
(or ``UserInputError``) catches every user error and the command line reports
it in one line, while ``except ValueError`` / ``except TypeError`` still work.
"""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import relusv
from relusv.errors import InvalidInputError, InvalidTypeError, UserInputError

PACKAGE = Path(relusv.__file__).resolve().parent
SCANNED = sorted([*PACKAGE.glob("torch/*.py"), *PACKAGE.glob("report/*.py"), *PACKAGE.glob("analysis/*.py"),
                  PACKAGE / "params.py", PACKAGE / "pruning_rules.py"])
PLAIN = {"ValueError", "TypeError"}


def plain_raises(path: Path, root: Path = PACKAGE) -> list:
    """``file:line: raise X`` for every ``raise ValueError`` / ``raise TypeError`` (called or bare) in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id in PLAIN:
                found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno}: raise {raised.id}"))
    return [line for _, line in sorted(found)]


def test_the_scan_finds_plain_raises(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(x):\n    if x:\n        raise ValueError('bad')\n    raise TypeError\n"
                      "    raise InvalidInputError('fine')\n", encoding="utf-8")
    assert plain_raises(sample, tmp_path) == ["sample.py:3: raise ValueError", "sample.py:4: raise TypeError"]


def test_no_plain_value_or_type_errors_in_the_scanned_modules():
    assert len(SCANNED) > 20, SCANNED
    offenders = [line for path in SCANNED for line in plain_raises(path)]
    assert not offenders, "raise relusv.errors.InvalidInputError / InvalidTypeError instead:\n" + "\n".join(offenders)


def test_report_input_errors_belong_to_the_family():
    from relusv.report import ReportInputError

    assert issubclass(ReportInputError, InvalidInputError)
    assert issubclass(ReportInputError, ValueError)


# ------------------------------------------------------------------ behaviour of representative entry points

torch = pytest.importorskip("torch")
nn = torch.nn


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def _data(n=12):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_analyze_refuses_a_non_module():
    from relusv.torch import analyze

    x, y = _data()
    with pytest.raises(InvalidTypeError, match="torch.nn.Module"):
        analyze("not a model", x, y)


@pytest.mark.parametrize("repeats", [0, -1, 1.5, "3"])
def test_monitor_refuses_bad_repeats(repeats):
    from relusv.torch import Monitor

    x, y = _data()
    with pytest.raises(InvalidInputError, match="repeats"):
        Monitor(_model(), x, y, repeats=repeats)


@pytest.mark.parametrize("options, match", [({"min_rank": 0}, "min_rank"), ({"retrain_batches": -1}, "retrain_batches"),
                                            ({"retrain": True}, "retrain=True")])
def test_harmonic_prune_refuses_bad_options(options, match):
    from relusv.torch import harmonic_prune

    x, y = _data()
    with pytest.raises(UserInputError, match=match) as raised:
        harmonic_prune(_model(), x, y, **options)
    assert isinstance(raised.value, ValueError)


def test_conv_operator_norm_refuses_an_unknown_padding_mode():
    from relusv.torch import conv_operator_norm

    with pytest.raises(InvalidInputError, match="padding_mode"):
        conv_operator_norm(torch.ones(2, 1, 3, 3), 8, padding_mode="mirror")


@pytest.mark.parametrize("rank, error", [(0, InvalidInputError), (2.0, InvalidTypeError), (True, InvalidTypeError)])
def test_double_linear_refuses_a_bad_rank(rank, error):
    from relusv.torch import DoubleLinear

    with pytest.raises(error, match="rank"):
        DoubleLinear(4, 3, rank=rank)


def test_double_linear_from_linear_refuses_a_rank_above_the_weights():
    from relusv.torch import DoubleLinear

    with pytest.raises(InvalidInputError, match="rank must be at most"):
        DoubleLinear.from_linear(nn.Linear(4, 3), rank=4)


@pytest.mark.parametrize("correct", [np.ones((2, 3), bool), "abc", np.array([0.0, 1.0]), np.array([0, 2, 1])])
def test_equal_size_subsets_refuses_a_classification_that_is_not_a_boolean_vector(correct):
    from relusv.analysis import equal_size_subsets

    with pytest.raises(InvalidInputError, match="correct must be a 1-D array"):
        equal_size_subsets(correct)


def test_equal_size_subsets_accepts_booleans_and_zero_one_integers():
    from relusv.analysis import equal_size_subsets

    flags = [1, 0, 1, 1, 0, 0, 1, 0]
    from_ints, from_bools = equal_size_subsets(flags, repeats=2), equal_size_subsets(np.array(flags, bool), repeats=2)
    assert [s.tolist() for s in from_ints["incorrect"]] == [[1, 4, 5, 7]] * 2
    assert all(np.array_equal(a, b) for g in from_ints for a, b in zip(from_ints[g], from_bools[g]))


def test_user_errors_are_relusv_errors_and_built_ins():
    assert issubclass(InvalidInputError, relusv.ReluSVError) and issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidTypeError, relusv.ReluSVError) and issubclass(InvalidTypeError, TypeError)
