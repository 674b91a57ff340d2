"""DoubleConv2d (MATH.md section 9): from_conv / to_conv, rank bound, double-p-product initialisation.

Oracles: torch.nn.functional.conv2d of the original layer in float64, NumPy's
SVD and matrix rank of the kernel matrix; the variance rule checked on
independent layers against the standard error of the statistic itself.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import DoubleConv2d  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2)),
    dict(kernel_size=3, stride=2, padding=1, padding_mode="circular"),
    dict(kernel_size=1, bias=False),
])
def test_from_conv_at_full_rank_reproduces_the_layer(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, **kwargs).double()
    k_mat = conv.weight.detach().reshape(7, -1).numpy()
    full = min(k_mat.shape)
    double = DoubleConv2d.from_conv(conv, full)
    x = torch.randn(3, 5, 9, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(double(x), conv(x), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(double.to_conv()(x), conv(x), rtol=1e-10, atol=1e-10)
    assert double.parameter_count() == sum(p.numel() for p in double.parameters())


def test_from_conv_truncates_the_kernel_matrix():
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 8, 3, padding=1)
    k_mat = conv.weight.detach().double().reshape(8, -1).numpy()
    u, s, vt = np.linalg.svd(k_mat, full_matrices=False)
    double = DoubleConv2d.from_conv(conv, 3)
    assert double.weight.dtype == torch.float32 and double.rank == 3
    got = double.kernel_matrix.detach().double().numpy()
    np.testing.assert_allclose(got, (u[:, :3] * s[:3]) @ vt[:3], atol=1e-5)
    assert np.linalg.matrix_rank(got, tol=1e-4) == 3
    x = torch.randn(2, 6, 7, 7)
    with torch.no_grad():
        expected = nn.functional.conv2d(x.double(), torch.from_numpy(got).reshape(8, 6, 3, 3), conv.bias.double(),
                                        padding=1)
        torch.testing.assert_close(double(x).double(), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="rank"):
        DoubleConv2d.from_conv(conv, 9)
    with pytest.raises(ValueError, match="groups"):
        DoubleConv2d.from_conv(nn.Conv2d(4, 4, 3, groups=2), 2)


def test_rank_stays_bounded_in_training():
    layer = DoubleConv2d(3, 6, 3, rank=2, padding=1, seed=0)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 6, 6), torch.randn(4, 6, 6, 6)
    for _ in range(3):
        opt.zero_grad()
        ((layer(x) - y) ** 2).mean().backward()
        opt.step()
    product = layer.weight1.detach().double().reshape(6, 2) @ layer.weight2.detach().double().reshape(2, -1)
    assert np.linalg.matrix_rank(product.numpy()) == 2   # from the factors in float64: no float32 rounding noise


@pytest.mark.parametrize("init, p", [("he", 1), ("he", 2), ("glorot", 2)])
def test_kernel_entries_have_the_target_variance(init, p):
    c_in, c_out, k, r, layers = 6, 8, 3, 5, 300
    fan_in = c_in * k * k
    v = 2 / fan_in if init == "he" else 2 / (fan_in + c_out * k * k)
    assert DoubleConv2d(c_in, c_out, k, r, init=init, p=p).target_variance() == pytest.approx(v, rel=1e-15)
    # Mean square of the kernel entries per layer (mean 0); averaged over independent layers it has
    # standard error sd / sqrt(layers): a 5-sigma band fails with probability ~6e-7 if the rule holds.
    values = []
    for seed in range(layers):
        layer = DoubleConv2d(c_in, c_out, k, r, init=init, p=p, seed=seed, dtype=torch.float64)
        values.append(float((layer.weight.detach() ** 2).mean()))
        assert torch.equal(layer.bias, torch.zeros(c_out, dtype=torch.float64))
    values = np.asarray(values)
    standard_error = values.std(ddof=1) / math.sqrt(layers)
    assert abs(values.mean() - v) < 5 * standard_error, (values.mean(), v, standard_error)
    assert 5 * standard_error < 0.2 * v   # narrow enough to catch a wrong fan-in (a factor 9 here) or a lost 1/r


def test_seed_reproduces_and_shapes():
    a, b = DoubleConv2d(3, 4, (3, 2), 2, seed=5), DoubleConv2d(3, 4, (3, 2), 2, seed=5)
    assert torch.equal(a.weight1, b.weight1) and torch.equal(a.weight2, b.weight2)
    assert a.weight1.shape == (4, 2, 1, 1) and a.weight2.shape == (2, 3, 3, 2) and a.weight.shape == (4, 3, 3, 2)
    with pytest.raises(ValueError):
        DoubleConv2d(3, 4, 3, 2, init="lecun")
    with pytest.raises(ValueError):
        DoubleConv2d(3, 4, 0, 2)
