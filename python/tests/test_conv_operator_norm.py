"""Power-iteration estimate of ||A_K|| for zero padding, strides and dilation (MATH.md section 9).

Oracle: the top singular value (NumPy SVD) of the dense operator matrix whose
columns are conv2d applied to the basis images; for circular padding and
stride 1, also relusv.conv_singular_values.
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


@pytest.mark.parametrize("kwargs, size", [
    (dict(kernel_size=3, stride=2, padding=1), (7, 6)),
    (dict(kernel_size=3, stride=1, padding=0), (6, 6)),
    (dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 2)), (5, 6)),
    (dict(kernel_size=3, stride=1, padding=2, dilation=2), (6, 5)),
    (dict(kernel_size=4, stride=2, padding=1), (8, 8)),
])
def test_power_iteration_approaches_the_dense_top_singular_value_from_below(kwargs, size):
    torch.manual_seed(sum(size))
    conv = nn.Conv2d(3, 4, **kwargs).double()
    top = np.linalg.svd(dense_operator(conv, *size), compute_uv=False)[0]
    result = conv_operator_norm(conv, size, tol=1e-12, max_iter=20000)
    assert result.converged
    assert result.estimate <= top * (1 + 1e-12)
    assert result.estimate == pytest.approx(top, rel=1e-5)
    again = conv_operator_norm(conv.weight, size, tol=1e-12, max_iter=20000, **{
        k: v for k, v in kwargs.items() if k != "kernel_size"})
    assert again.estimate == result.estimate   # same seed, same geometry: same result


def test_circular_padding_matches_the_exact_spectrum():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1, padding_mode="circular").double()
    exact = relusv.conv_singular_values(conv.weight, 8, k=1)[0]
    assert conv_operator_norm(conv, 8, tol=1e-12, max_iter=20000).estimate == pytest.approx(exact, rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="groups"):
        conv_operator_norm(nn.Conv2d(4, 4, 3, groups=2), 8)
    with pytest.raises(ValueError, match="cannot be applied"):
        conv_operator_norm(nn.Conv2d(2, 2, 5), 3)
    weight = torch.ones(2, 2, 3, 3)
    weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        conv_operator_norm(weight, 8)
