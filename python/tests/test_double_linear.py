"""DoubleLinear: rank bound, double-p-product initialisation (MATH.md section 7), SVD conversions.

Oracles: NumPy's SVD and matrix rank; the variance rule ``r tau^(4p) = v``
checked on independent layers with a tolerance taken from the sampling
distribution of the statistic itself.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import DoubleLinear  # noqa: E402
from torch import nn  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_shapes_forward_and_parameter_count():
    layer = DoubleLinear(7, 5, 3, seed=0)
    assert layer.weight1.shape == (5, 3) and layer.weight2.shape == (3, 7) and layer.bias.shape == (5,)
    assert layer.parameter_count() == 3 * (7 + 5) + 5 == sum(p.numel() for p in layer.parameters())
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(11, 7, dtype=torch.float32)
    expected = x.double() @ (layer.weight1.double() @ layer.weight2.double()).T + layer.bias.double()
    torch.testing.assert_close(layer(x).double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(layer.weight, layer.weight1 @ layer.weight2)
    assert not DoubleLinear(7, 5, 3, bias=False).bias


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_rank_is_at_most_rank_even_after_training(rank):
    layer = DoubleLinear(9, 8, rank, seed=rank)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x, y = torch.randn(64, 9), torch.randn(64, 8)
    for _ in range(5):
        opt.zero_grad()
        ((layer(x) - y) ** 2).mean().backward()
        opt.step()
    assert layer.weight1.grad is not None and layer.weight2.grad is not None
    product = layer.weight1.detach().double() @ layer.weight2.detach().double()   # no float32 rounding noise
    assert np.linalg.matrix_rank(product.numpy()) == rank


def test_initial_bias_is_zero_and_seed_reproduces():
    a, b, c = DoubleLinear(10, 6, 4, seed=3), DoubleLinear(10, 6, 4, seed=3), DoubleLinear(10, 6, 4, seed=4)
    assert torch.equal(a.bias, torch.zeros(6))
    assert torch.equal(a.weight1, b.weight1) and torch.equal(a.weight2, b.weight2)
    assert not torch.equal(a.weight1, c.weight1)


@pytest.mark.parametrize("init, p", [("he", 1), ("glorot", 1), ("he", 2), ("glorot", 3)])
def test_product_entries_have_the_target_variance(init, p):
    n, m, r, layers = 40, 30, 8, 300
    v = 2 / n if init == "he" else 2 / (n + m)
    assert DoubleLinear(n, m, r, init=init, p=p).target_variance() == pytest.approx(v, rel=1e-15)
    # Per layer, the mean square of the m*n entries of W1 W2 (their mean is 0); the layers are
    # independent, so the average over layers has standard error sd / sqrt(layers) and a 5-sigma
    # band fails with probability ~6e-7 when the rule holds. The same for the factor entries,
    # whose variance must be tau^(2p) with r tau^(4p) = v.
    products, factors = [], []
    for seed in range(layers):
        layer = DoubleLinear(n, m, r, init=init, p=p, seed=seed, dtype=torch.float64)
        products.append(float((layer.weight.detach() ** 2).mean()))
        factors.append(float((layer.weight1.detach() ** 2).mean()))
    for values, target in ((products, v), (factors, math.sqrt(v / r))):
        values = np.asarray(values)
        standard_error = values.std(ddof=1) / math.sqrt(layers)
        assert abs(values.mean() - target) < 5 * standard_error, (values.mean(), target, standard_error)
    # The band is narrow enough to catch a wrong rule: forgetting the 1/r gives a factor r = 8.
    assert 5 * np.std(products, ddof=1) / math.sqrt(layers) < 0.2 * v


def test_entries_of_a_factor_are_products_of_p_normals():
    # For p = 2 the entries are products of two normals: kurtosis 9 (p = 1: 3), E|a| = (2/pi) tau^2.
    layer = DoubleLinear(200, 300, 50, p=2, seed=0, dtype=torch.float64)
    a = layer.weight1.detach().numpy().ravel()
    tau = layer.factor_std()
    kurtosis = (a ** 4).mean() / (a ** 2).mean() ** 2
    assert 7.5 < kurtosis < 10.5
    assert np.abs(a).mean() == pytest.approx(2 / math.pi * tau ** 2, rel=0.03)


def test_from_linear_at_full_rank_reproduces_the_layer():
    torch.manual_seed(0)
    linear = nn.Linear(12, 7)
    double = DoubleLinear.from_linear(linear, 7)
    assert double.rank == 7 and double.weight1.dtype == torch.float32
    torch.testing.assert_close(double.weight, linear.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(double.bias, linear.bias, rtol=0, atol=0)
    x = torch.randn(20, 12)
    torch.testing.assert_close(double(x), linear(x), rtol=1e-5, atol=1e-5)
    back = double.to_linear()
    assert isinstance(back, nn.Linear) and torch.equal(back.weight, double.weight.detach())
    assert torch.equal(back.bias, double.bias.detach())


def test_from_linear_truncates_by_eckart_young():
    torch.manual_seed(1)
    linear = nn.Linear(15, 10).double()
    w = linear.weight.detach().numpy()
    sigma = np.linalg.svd(w, compute_uv=False)
    for k in (1, 3, 6):
        double = DoubleLinear.from_linear(linear, k)
        error = w - double.weight.detach().numpy()
        assert np.linalg.norm(error, 2) == pytest.approx(sigma[k], rel=1e-10)
        assert np.linalg.matrix_rank(double.weight.detach().numpy()) == k
        # The split is balanced: both factors carry Sigma^(1/2).
        np.testing.assert_allclose(np.linalg.norm(double.weight1.detach().numpy(), axis=0),
                                   np.sqrt(sigma[:k]), rtol=1e-10)
    # A DoubleLinear truncates too (the factored weight goes through the SVD of its product).
    smaller = DoubleLinear.from_linear(DoubleLinear.from_linear(linear, 6), 4)
    np.testing.assert_allclose(np.linalg.svd(smaller.weight.detach().numpy(), compute_uv=False)[:4], sigma[:4],
                               rtol=1e-10)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="rank must be positive"):
        DoubleLinear(3, 3, 0)
    with pytest.raises(ValueError, match="init must be"):
        DoubleLinear(3, 3, 2, init="xavier-ish")
    with pytest.raises(ValueError, match="init must be"):
        DoubleLinear(3, 3, 2, init=-1.0)
    with pytest.raises(TypeError, match="in_features must be an integer"):
        DoubleLinear(3.5, 3, 2)
    with pytest.raises(ValueError, match="rank must be at most"):
        DoubleLinear.from_linear(nn.Linear(4, 3), 4)
