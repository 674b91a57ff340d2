"""Every meaning check the library's engine owns reaches the Python caller
with its status and its message: the Python layer only coerces (types, C
integer ranges), so these come from the engine through the C surface."""
import numpy as np
import pytest
import relusv

RNG = np.random.default_rng(0)
W = RNG.normal(size=(5, 6))
X = RNG.normal(size=(12, 6))
FAST = dict(max_steps=0, progress=False)


def relu_sv(**kwargs):
    args = dict(W=W, b=None, X=X, **FAST)
    args.update(kwargs)
    return relusv.relu_singular_values(**args)


@pytest.mark.parametrize("call, status, message", [
    (lambda: relu_sv(group_size=0), "INVALID_ARGUMENT", "group_size must be at least 1, got 0"),
    (lambda: relu_sv(group_size=5), "SHAPE", "X has 12 rows, not a multiple of group_size = 5"),
    (lambda: relu_sv(X=None, group_size=2), "INVALID_ARGUMENT", "group_size needs X"),
    (lambda: relu_sv(X=None, sphere_points=0), "INVALID_ARGUMENT",
     "sphere_points must be positive when X is not given, got 0"),
    (lambda: relu_sv(ks=[0, 1, 2, 3, 4, 4]), "INVALID_ARGUMENT", r"k_count = 6 exceeds min\(m, n\) = 5"),
    (lambda: relu_sv(ks=[2**63 + 1]), "INVALID_ARGUMENT", "k = 9223372036854775809 is out of range"),
    (lambda: relu_sv(ks=[1, 1]), "INVALID_ARGUMENT", "ks contains repeated values"),
    (lambda: relu_sv(batch_size=0), "INVALID_ARGUMENT", "batch_size must be positive, got 0"),
    (lambda: relu_sv(X=X[:, :4]), "SHAPE", "X has 4 columns but W has 6 columns"),
    (lambda: relu_sv(X=X[:0]), "EMPTY", "X has no points"),
    (lambda: relu_sv(b=np.zeros(4)), "SHAPE", "b has length 4 but W has 5 rows"),
    (lambda: relusv.relu_fit_gradient(W, None, X, np.ones((5, 2)), np.ones((3, 6))), "SHAPE",
     "U is 5 x 2 and V is 3 x 6"),
    (lambda: relusv.relu_fit_gradient(W, None, X, np.ones((5, 2)), np.where(np.eye(2, 6) > 0, np.nan, 1.0)),
     "NONFINITE", "V contains NaN or infinity at row 0, column 0"),
    (lambda: relusv.operator_gmw(W, relu=True, sphere_points=0), "INVALID_ARGUMENT", "sphere_points must be positive"),
    (lambda: relusv.operator_gmw(W, X=X[:, :2]), "SHAPE", "X has 2 columns but W has 6 columns"),
    (lambda: relusv.conv_singular_values(np.ones((2, 2, 3, 3)), 3, k=19), "INVALID_ARGUMENT",
     r"k = 19 exceeds H W min\(C_out, C_in\) = 18"),
    (lambda: relusv.diameter(np.ones((0, 3))), "EMPTY", "diameter of an empty set"),
    (lambda: relusv.GMWAccumulator(4, samples=8).update(np.ones((2, 3))), "SHAPE",
     "x has 3 columns but the accumulator has dimension 4"),
    (lambda: relusv.GMWAccumulator(4, samples=8).estimate(), "EMPTY", "no points have been added"),
])
def test_the_engines_check_reaches_the_caller_with_its_status(call, status, message):
    with pytest.raises(relusv.InvalidInputError, match=message) as info:
        call()
    assert info.value.status_name == "RELUSV_ERROR_" + status


def test_sphere_points_matter_only_without_X():
    # The sphere sample is not drawn when X is given: its size is not checked then.
    assert len(relu_sv(ks=[0], sphere_points=0).bound) == 1
