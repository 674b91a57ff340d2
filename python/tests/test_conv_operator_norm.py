"""``||A_K||`` of convolutions: exact for circular padding, a certified bracket otherwise (MATH.md section 9).

Oracle: the top singular value (NumPy SVD) of the dense operator matrix whose
columns are the layer applied to the basis images.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import relusv  # noqa: E402
from relusv.torch import conv_operator_norm  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def dense_operator(conv: nn.Conv2d, h: int, w: int) -> np.ndarray:
    c_in = conv.in_channels
    basis = torch.eye(c_in * h * w, dtype=torch.float64).reshape(-1, c_in, h, w)
    layer = conv.double()
    with torch.no_grad():
        columns = layer._conv_forward(basis, layer.weight, None).reshape(basis.shape[0], -1)
    return columns.T.numpy()


def dense_top(conv: nn.Conv2d, h: int, w: int) -> float:
    return float(np.linalg.svd(dense_operator(conv, h, w), compute_uv=False)[0])


@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=3, stride=2, padding=1), (7, 6)),
    (dict(kernel_size=3, stride=1, padding=0), (6, 6)),
    (dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 2)), (5, 6)),
    (dict(kernel_size=3, stride=1, padding=2, dilation=2), (6, 5)),
    (dict(kernel_size=4, stride=2, padding=1), (8, 8)),
    (dict(kernel_size=3, stride=1, padding=1, groups=2), (6, 6)),
    (dict(kernel_size=3, stride=2, padding=1, groups=4), (8, 6)),   # depthwise
])
def test_zero_padding_gives_a_bracket_around_the_dense_top_singular_value(kwargs, size):
    torch.manual_seed(sum(size))
    conv = nn.Conv2d(4, 4, **kwargs).double()
    top = dense_top(conv, *size)
    # The iterative bracket (Lanczos below, circular torus above).
    result = conv_operator_norm(conv, size, tol=1e-10, max_iter=2000, dense=False, ritz_tol=1e-10)
    assert result.method == "bracket (Lanczos, circular torus)"
    assert result.lower <= top <= result.upper
    assert result.estimate == result.lower == pytest.approx(top, rel=1e-6)
    assert 0 <= result.gap == pytest.approx((result.upper - result.lower) / result.upper)
    assert result.converged == (result.gap <= 1e-10)   # converged: the certified gap, nothing else
    assert np.linalg.norm(result.vector) == pytest.approx(1.0)
    weight_only = {k: v for k, v in kwargs.items() if k != "kernel_size"}
    again = conv_operator_norm(conv.weight, size, tol=1e-10, max_iter=2000, dense=False, ritz_tol=1e-10,
                               **weight_only)
    assert (again.lower, again.upper) == (result.lower, result.upper)   # same seed, same geometry
    # The dense route of small layers: Lanczos below, a Cholesky certificate above, a tight bracket.
    small = conv_operator_norm(conv, size)
    assert small.method == "bracket (dense, Cholesky certificate)" and small.converged
    assert small.lower <= top <= small.upper and small.gap <= 1e-6


@pytest.mark.parametrize("channels, kernel, size", [(64, 7, (4, 4)), (48, 3, (5, 3)), (96, 3, (2, 2))])
def test_a_depthwise_layer_on_a_small_image_is_bracketed_tightly_by_its_channels(channels, kernel, size):
    """A depthwise convolution is block diagonal over its channels: ``||A_K|| = max_c ||A_c||`` from every
    channel's small dense block at once, a tight certified bracket where the torus bound is loose."""
    torch.manual_seed(channels)
    conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels).double()
    top = dense_top(conv, *size)
    result = conv_operator_norm(conv, size)
    assert result.method == "bracket (dense, Cholesky certificate)" and result.converged
    assert result.lower <= top <= result.upper and result.gap <= 1e-6
    loose = conv_operator_norm(conv, size, dense=False)
    assert loose.lower <= top <= loose.upper


@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=1), (5, 4)),
    (dict(kernel_size=1, stride=2, padding=1), (5, 6)),
    (dict(kernel_size=1, stride=(1, 3), padding=(0, 2), groups=2), (4, 7)),
    (dict(kernel_size=1, groups=4), (3, 3)),   # depthwise
])
def test_a_1x1_kernel_is_exact_from_the_groups_kernel_matrices(kwargs, size):
    torch.manual_seed(5)
    conv = nn.Conv2d(4, 8, **kwargs).double()
    result = conv_operator_norm(conv, size)
    assert result.method == "exact (1x1 kernel)" and result.iterations == 0 and result.converged
    top = dense_top(conv, *size)
    assert result.lower <= top <= result.upper and result.estimate == pytest.approx(top, rel=1e-12)


def test_a_1x1_kernel_reading_only_padding_is_zero():
    conv = nn.Conv2d(2, 3, 1, stride=4, padding=2).double()
    result = conv_operator_norm(conv, 1)   # one pixel: the two outputs per axis read padded positions -2 and 2
    assert result.estimate == 0.0 == dense_top(conv, 1, 1)


def test_a_warm_start_needs_fewer_iterations_and_stays_certified():
    torch.manual_seed(2)
    conv = nn.Conv2d(4, 4, 3, padding=1).double()
    first = conv_operator_norm(conv, 10, tol=1e-6, max_iter=200, dense=False, ritz_tol=1e-8)
    with torch.no_grad():
        conv.weight.add_(1e-3 * torch.randn_like(conv.weight))
    cold = conv_operator_norm(conv, 10, tol=1e-6, max_iter=200, dense=False, ritz_tol=1e-8)
    warm = conv_operator_norm(conv, 10, tol=1e-6, max_iter=200, dense=False, ritz_tol=1e-8, start=first.vector)
    top = dense_top(conv, 10, 10)
    assert warm.lower <= top <= warm.upper and warm.lower == pytest.approx(top, rel=1e-6)
    assert warm.iterations < cold.iterations
    with pytest.raises(ValueError, match="start must hold"):
        conv_operator_norm(conv, 10, dense=False, start=np.ones(5))


@pytest.mark.parametrize("padding_mode, padding, size", [
    ("reflect", 1, (6, 5)), ("replicate", 2, (5, 5)), ("circular", 2, (6, 6)), ("zeros", 3, (4, 4)),
])
def test_the_upper_end_holds_for_every_padding_mode(padding_mode, padding, size):
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 2, 3, padding=padding, padding_mode=padding_mode).double()
    top = dense_top(conv, *size)
    result = conv_operator_norm(conv, size, tol=1e-12, max_iter=2000, ritz_tol=1e-12)
    assert result.lower <= top <= result.upper
    assert result.lower == pytest.approx(top, rel=1e-6)


@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=3, padding=1), (8, 8)),
    (dict(kernel_size=3, padding=1, stride=2, groups=2), (8, 6)),
    (dict(kernel_size=3, padding=2, dilation=2, groups=4), (6, 7)),
])
def test_circular_padding_is_exact_without_iterations(kwargs, size):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6 if kwargs.get("groups", 1) != 4 else 8, padding_mode="circular", **kwargs).double()
    result = conv_operator_norm(conv, size)
    assert result.method == "exact (circular)" and result.iterations == 0 and result.gap == 0
    assert result.estimate == pytest.approx(dense_top(conv, *size), rel=1e-12)


def test_the_bracket_is_tight_for_a_large_input():
    # the zero-padded operator is the restriction of the circular one on the padded torus: close on large inputs
    torch.manual_seed(1)
    conv = nn.Conv2d(8, 8, 3, padding=1).double()
    result = conv_operator_norm(conv, 32, tol=1e-4)
    assert result.method == "bracket (Lanczos, circular torus)"
    assert result.gap <= 1e-2 and result.lower <= result.upper and result.iterations <= 60


def test_bad_inputs():
    with pytest.raises(ValueError, match="cannot be applied"):
        conv_operator_norm(nn.Conv2d(2, 2, 5), 3)
    weight = torch.ones(2, 2, 3, 3)
    weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        conv_operator_norm(weight, 8)
    with pytest.raises(ValueError, match="padding_mode"):
        conv_operator_norm(torch.ones(2, 2, 3, 3), 8, padding_mode="mirror")
    with pytest.raises(ValueError, match="groups"):
        conv_operator_norm(torch.ones(2, 2, 3, 3), 8, groups=0)
    assert relusv.conv_singular_values(torch.ones(2, 1, 3, 3), 8, k=1, groups=2)[0] == pytest.approx(9.0)
