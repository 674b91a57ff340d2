"""The SVD of a double layer from its factors (``factored_svd``), against NumPy's SVD of the product."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from relusv.torch import DoubleConv2d, DoubleLinear  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("shape", [(30, 20, 7), (5, 40, 9), (12, 12, 12)])
def test_factored_svd_is_the_svd_of_the_product(shape):
    n, m, r = shape
    layer = DoubleLinear(n, m, r, seed=3, dtype=torch.float64)
    u, s, vt = layer.svd()
    w = layer.weight.detach().numpy()
    np.testing.assert_allclose(s[: min(m, n, r)], np.linalg.svd(w, compute_uv=False)[: min(m, n, r)],
                               rtol=1e-10, atol=1e-12 * s[0])
    np.testing.assert_allclose((u * s) @ vt, w, atol=1e-12 * s[0])
    k = min(m, n, r) - 1
    cut = DoubleLinear.from_linear(layer, k)
    uu, ss, vv = np.linalg.svd(w)
    np.testing.assert_allclose(cut.weight.detach().numpy(), (uu[:, :k] * ss[:k]) @ vv[:k], atol=1e-10 * ss[0])


def test_double_conv_cut_from_its_factors():
    layer = DoubleConv2d(3, 6, 3, rank=5, seed=1, dtype=torch.float64)
    mat = layer.kernel_matrix.detach().numpy()
    cut = DoubleConv2d.from_conv(layer, 2)
    u, s, vt = np.linalg.svd(mat)
    np.testing.assert_allclose(cut.kernel_matrix.detach().numpy(), (u[:, :2] * s[:2]) @ vt[:2], atol=1e-10 * s[0])
