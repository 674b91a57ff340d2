"""Spectra of convolutions (MATH.md section 9).

Oracles: the SVD (NumPy) of the operator matrix built explicitly by loops
over output positions, channels and taps; for zero padding and strides, the
same SVD of the matrix whose columns are ``conv2d`` applied to the basis
images.
"""
from __future__ import annotations

import numpy as np
import pytest
import relusv
from relusv.conv import kernel_matrix


def circular_operator(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """The dense matrix of y[o, p, q] = sum_{i, a, c} K[o, i, a, c] x[i, (p + a) mod H, (q + c) mod W]."""
    c_out, c_in, kh, kw = kernel.shape
    a = np.zeros((c_out * h * w, c_in * h * w))
    for o in range(c_out):
        for p in range(h):
            for q in range(w):
                for i in range(c_in):
                    for dy in range(kh):
                        for dx in range(kw):
                            a[(o * h + p) * w + q, (i * h + (p + dy) % h) * w + (q + dx) % w] += kernel[o, i, dy, dx]
    return a


@pytest.mark.parametrize("shape, size", [
    ((3, 2, 3, 3), (5, 5)),     # C_out > C_in
    ((2, 4, 3, 3), (4, 6)),     # C_out < C_in, non-square input
    ((3, 3, 2, 2), (4, 4)),     # even kernel
    ((2, 3, 1, 3), (3, 5)),     # non-square kernel
    ((4, 2, 4, 2), (4, 3)),     # kernel as tall as the input
    ((1, 1, 5, 5), (7, 6)),     # single channel: |FFT| of the kernel
    ((5, 5, 1, 1), (2, 3)),     # 1x1: the kernel matrix's values, each H W times
])
def test_circular_spectrum_equals_the_dense_operator_svd(shape, size):
    rng = np.random.default_rng(sum(shape) + 7 * size[0])
    kernel = rng.normal(size=shape)
    h, w = size
    expected = np.linalg.svd(circular_operator(kernel, h, w), compute_uv=False)[: h * w * min(shape[:2])]
    got = relusv.conv_singular_values(kernel, size)
    assert got.dtype == np.float64 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * expected[0])
    assert np.all(np.diff(got) <= 0)
    np.testing.assert_allclose(relusv.conv_singular_values(kernel, size, k=3), expected[:3], rtol=1e-12)


def test_one_by_one_kernel_repeats_the_kernel_matrix_spectrum():
    kernel = np.random.default_rng(1).normal(size=(6, 4, 1, 1))
    s = relusv.singular_values(kernel_matrix(kernel))
    got = relusv.conv_singular_values(kernel, (3, 5))
    np.testing.assert_allclose(got, np.repeat(s, 15), rtol=1e-12)


def test_float32_weights_are_computed_in_float32():
    kernel = np.random.default_rng(2).normal(size=(4, 3, 3, 3))
    expected = relusv.conv_singular_values(kernel, 6)
    got = relusv.conv_singular_values(kernel.astype(np.float32), 6)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5 * expected[0])


def test_threads_do_not_change_the_values_and_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    kernel = np.random.default_rng(3).normal(size=(8, 8, 3, 3))
    one = relusv.conv_singular_values(kernel, 16, threads=1)
    two = relusv.conv_singular_values(torch.from_numpy(kernel), (16, 16), threads=2)
    np.testing.assert_array_equal(one, two)


def test_bad_inputs_are_refused_with_clear_errors():
    kernel = np.ones((2, 2, 3, 3))
    with pytest.raises(ValueError, match="shape"):
        relusv.conv_singular_values(np.ones((2, 9)), 5)
    with pytest.raises(ValueError, match="larger than the input"):
        relusv.conv_singular_values(kernel, (2, 5))
    bad = kernel.copy()
    bad[1, 0, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN") as info:
        relusv.conv_singular_values(bad, 5)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"
    with pytest.raises(ValueError, match="exceeds"):
        relusv.conv_singular_values(kernel, 3, k=19)
    with pytest.raises(ValueError, match="positive"):
        relusv.conv_singular_values(kernel, 3, k=0)
    with pytest.raises(ValueError, match="input_size"):
        relusv.conv_singular_values(kernel, (3, 3, 3))
    with pytest.raises(TypeError):
        relusv.conv_singular_values(kernel.astype(complex), 5)
    with pytest.raises(ValueError, match="too large"):
        relusv.conv_singular_values(kernel, (1 << 20, 1 << 20))


def test_progress_is_reported_and_can_cancel():
    kernel = np.random.default_rng(4).normal(size=(16, 16, 3, 3))
    calls = []
    relusv.conv_singular_values(kernel, 64, threads=1, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] and all(b >= a for (a, _), (b, _) in zip(calls, calls[1:]))
    with pytest.raises(relusv.CancelledError):
        relusv.conv_singular_values(kernel, 64, progress=lambda done, total: True)
