"""relusv.torch.relu_singular_values on Linear and Conv2d layers (MATH.md sections 2-3 and 9).

Oracles, all in float64 and independent of the engine: every bound is
recomputed with torch.nn.functional.conv2d (or a matrix product) from the
returned factors; the exact k = 0 value and the zeros at and above the channel
rank from MATH.md section 9; BatchNorm folding against the eval-mode forward
pass of Conv2d -> BatchNorm2d.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import relusv  # noqa: E402
from relusv.torch import DoubleConv2d, relu_singular_values  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = dict(max_steps=40, threads=1)


def conv_apply(conv: nn.Conv2d, x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The layer's convolution with another kernel and bias (same geometry), float64."""
    x = x.double()
    if conv.padding_mode != "zeros":
        pad = (conv.padding[1], conv.padding[1], conv.padding[0], conv.padding[0])
        return F.conv2d(F.pad(x, pad, mode=conv.padding_mode), kernel, bias, conv.stride, 0, conv.dilation)
    return F.conv2d(x, kernel, bias, conv.stride, conv.padding, conv.dilation)


def max_error(conv, x, kernel, bias, other) -> float:
    """max_x ||ReLU(A_K x + b) - ReLU(A_L x + b)|| over all outputs of each image."""
    diff = torch.relu(conv_apply(conv, x, kernel, bias)) - torch.relu(conv_apply(conv, x, other, bias))
    return float(diff.flatten(1).norm(dim=1).max())


@pytest.mark.parametrize("kwargs, size, dtype", [
    (dict(kernel_size=3, padding=1), (6, 6), torch.float64),
    (dict(kernel_size=3, stride=2, padding=1), (7, 7), torch.float64),
    (dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 0)), (6, 5), torch.float64),
    (dict(kernel_size=3, padding=1, padding_mode="circular"), (5, 5), torch.float64),
    (dict(kernel_size=3, stride=2), (7, 6), torch.float32),
])
def test_every_conv_bound_is_the_exact_error_of_its_factors(kwargs, size, dtype):
    torch.manual_seed(sum(size))
    conv = nn.Conv2d(3, 5, **kwargs).to(dtype)
    with torch.no_grad():
        conv.bias.normal_(0, 0.3)
    x = torch.randn(12, 3, *size, dtype=dtype)
    result = relu_singular_values(conv, x, return_factors=True, seed=0, **SMALL)
    kernel, bias = conv.weight.detach().double(), conv.bias.detach().double()
    k_mat = kernel.reshape(5, -1).numpy()
    np.testing.assert_allclose(result.sigma, np.linalg.svd(k_mat, compute_uv=False), rtol=1e-5)
    assert result.group_size == conv_apply(conv, x[:1], kernel, bias).shape[2] * \
        conv_apply(conv, x[:1], kernel, bias).shape[3]
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    for k, bound, (u, v) in zip(result.ks, result.bound, result.factors):
        other = torch.from_numpy(u @ v).reshape(kernel.shape)
        recomputed = max_error(conv, x, kernel, bias, other)
        assert bound >= recomputed * (1 - 1e-12) - 1e-12, (k, bound, recomputed)
        assert bound == pytest.approx(recomputed, rel=rtol, abs=1e-12), (k, bound, recomputed)
        assert np.linalg.matrix_rank(u @ v) <= k
    # k = 0 is exact: max_x ||ReLU(A_K x + b) - ReLU(b)||.
    exact = float((torch.relu(conv_apply(conv, x, kernel, bias)) - torch.relu(bias)[:, None, None])
                  .flatten(1).norm(dim=1).max())
    assert result.source[0] == "exact" and result.bound[0] == pytest.approx(exact, rel=rtol)
    assert np.all(np.diff(result.bound) <= 1e-12 * result.bound[0])
    # The chain of MATH.md section 2, grouped: t_k <= sigma_k * max_x (sum_p ||pi_p(x)||^2)^(1/2).
    patches = torch.nn.functional.unfold(x.double(), conv.kernel_size, conv.dilation,
                                         conv.padding if conv.padding_mode == "zeros" else 0, conv.stride) \
        if conv.padding_mode == "zeros" else None
    if patches is not None:
        radius = float(patches.square().sum((1, 2)).sqrt().max())
        assert result.data_max_norm == pytest.approx(radius, rel=1e-10)
        assert np.all(result.truncation_bound <= result.sigma * radius * (1 + 1e-6) + 1e-9)


def test_zero_at_and_above_the_channel_rank():
    torch.manual_seed(3)
    conv = DoubleConv2d(4, 6, 3, rank=2, padding=1, seed=3, dtype=torch.float64).to_conv()
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(5, 4, 5, 5, dtype=torch.float64)
    result = relu_singular_values(conv, x, ks=[0, 1, 2, 3, 5], return_factors=True, **SMALL)
    # s_k = 0 for k >= rank K_mat = 2; a certified bound is the exact error of a rank-k kernel
    # computed in floating point, so it is zero up to rounding (the kernel itself has rounding).
    assert np.all(result.bound[2:] <= 1e-12 * result.bound[0])
    assert result.bound[1] > 1e-3 * result.bound[0]
    kernel, bias = conv.weight.detach(), conv.bias.detach()
    # The recomputation (torch's convolution with the kernel U V) sums O(s_0) terms in another order than the
    # engine (X V^T, then U): at these ranks the two agree to that rounding, a few ulps of s_0.
    rounding = 16 * np.finfo(np.float64).eps * result.bound[0]
    for bound, (u, v) in zip(result.bound[2:], result.factors[2:]):
        assert bound >= max_error(conv, x, kernel, bias, torch.from_numpy(u @ v).reshape(kernel.shape)) - rounding


def test_linear_layers_are_the_case_p_equals_one():
    torch.manual_seed(4)
    linear = nn.Linear(9, 6).double()
    x = torch.randn(40, 9, dtype=torch.float64)
    result = relu_singular_values(linear, x, seed=2, **SMALL)
    direct = relusv.relu_singular_values(linear.weight.detach().numpy(), linear.bias.detach().numpy(), x.numpy(),
                                         seed=2, **SMALL)
    assert result.group_size == 1
    np.testing.assert_array_equal(result.bound, direct.bound)


def test_batchnorm_folding_equals_the_eval_forward_pass():
    torch.manual_seed(5)
    conv, bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_()
        bn.bias.normal_()
    bn.eval()
    x = torch.randn(6, 3, 5, 5)
    result = relu_singular_values(conv, x, ks=[0, 2], bn=bn, return_double=True, **SMALL)
    with torch.no_grad():
        reference = torch.relu(bn(conv(x))).double()
        folded = torch.relu(F.conv2d(x.double(), result.weight, result.bias, padding=1))
        torch.testing.assert_close(folded, reference, rtol=1e-5, atol=1e-5)
        exact = float((reference - torch.relu(result.bias)[:, None, None]).flatten(1).norm(dim=1).max())
        assert result.bound[0] == pytest.approx(exact, rel=1e-5)
        # The k = 2 approximant as a DoubleConv2d: its error is the bound.
        double = result.layers[1]
        assert isinstance(double, DoubleConv2d) and double.rank <= 2
        error = float((reference - torch.relu(double(x.double()))).flatten(1).norm(dim=1).max())
        assert result.bound[1] == pytest.approx(error, rel=1e-5)
    assert result.layers[0] is None


def test_refusals_and_sampling():
    with pytest.raises(ValueError, match="groups = 2"):     # grouped: analysed, but no DoubleConv2d approximant
        relu_singular_values(nn.Conv2d(4, 4, 3, groups=2), torch.randn(2, 4, 5, 5), return_double=True)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        relu_singular_values(nn.Conv2d(3, 4, 3), torch.randn(2, 5, 5))
    with pytest.raises(ValueError, match="max_images"):
        relu_singular_values(nn.Conv2d(64, 64, 3, padding=1), _huge_inputs())
    conv = nn.Conv2d(2, 3, 3)
    x = torch.randn(30, 2, 5, 5)
    a = relu_singular_values(conv, x, ks=[1], max_images=8, seed=1, **SMALL)
    b = relu_singular_values(conv, x, ks=[1], max_images=8, seed=1, **SMALL)
    assert len(a.images) == 8 and np.array_equal(a.images, b.images) and a.bound[0] == b.bound[0]
    assert a.points == 8 * 9


def _huge_inputs():
    """A tensor whose patch matrix would not fit: expanded from one image, so nothing is allocated."""
    return torch.zeros(1, 64, 64, 64).expand(100_000, 64, 64, 64)


def test_grouped_convolution_bounds_certified_through_the_block_diagonal_kernel():
    from relusv.errors import InvalidInputError
    from relusv.torch import relu_singular_values as layer_bounds

    torch.manual_seed(4)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2).double()
    x = torch.randn(7, 4, 5, 5, dtype=torch.float64)
    ks = [0, 1, 3, 5]
    result = layer_bounds(conv, x, ks, seed=0, max_steps=20, return_factors=True)
    dense = torch.zeros(6, 4, 3, 3, dtype=torch.float64)
    dense[:3, :2], dense[3:, 2:] = conv.weight.detach()[:3], conv.weight.detach()[3:]
    torch.testing.assert_close(result.weight, dense)
    with torch.no_grad():
        exact = torch.relu(conv(x))
    for k, bound, (u, v) in zip(ks, result.bound, result.factors):
        assert np.linalg.matrix_rank(np.asarray(u) @ np.asarray(v)) <= k
        kernel = torch.from_numpy(np.asarray(u) @ np.asarray(v)).reshape(6, 4, 3, 3)
        approx = torch.relu(torch.nn.functional.conv2d(x, kernel, conv.bias.detach(), padding=1))
        err = float((exact - approx).reshape(7, -1).norm(dim=1).max())
        assert bound == pytest.approx(err, rel=1e-9, abs=1e-12)
    with pytest.raises(InvalidInputError, match="mix the groups"):
        layer_bounds(conv, x, [1], return_double=True)
