"""Spectra of convolutions (MATH.md section 9).

Oracles: the SVD (NumPy) of the operator matrix built explicitly by loops
over output positions, channels and taps; for zero padding and strides, the
same SVD of the matrix whose columns are ``conv2d`` applied to the basis
images.
"""
from __future__ import annotations

import json
import subprocess
import textwrap

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


# --- grouped, depthwise and strided circular convolutions (MATH.md section 9) ---------------------------------


def torch_circular_operator(kernel: np.ndarray, h: int, w: int, groups: int, stride: int,
                            dilation: int = 1) -> np.ndarray:
    """The dense matrix of torch's conv2d with circular padding, built by applying it to the basis images."""
    torch = pytest.importorskip("torch")
    c_in = kernel.shape[1] * groups
    kh, kw = (dilation * (n - 1) + 1 for n in kernel.shape[2:])
    basis = torch.eye(c_in * h * w, dtype=torch.float64).reshape(-1, c_in, h, w)
    padded = torch.nn.functional.pad(basis, (0, kw - 1, 0, kh - 1), mode="circular")
    y = torch.nn.functional.conv2d(padded, torch.from_numpy(kernel), stride=stride, groups=groups,
                                   dilation=dilation)
    return y.reshape(c_in * h * w, -1).T.numpy()


def assert_spectrum_of(dense: np.ndarray, got: np.ndarray) -> None:
    """All of ``got`` equal the dense operator's leading singular values; the dense rest is zero."""
    expected = np.linalg.svd(dense, compute_uv=False)
    assert got.shape[0] <= expected.shape[0]
    np.testing.assert_allclose(got, expected[: got.shape[0]], rtol=1e-11, atol=1e-12 * expected[0])
    assert np.all(expected[got.shape[0]:] <= 1e-12 * expected[0])


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("c_out, c_in_group, k, size, groups, stride", [
    (4, 2, 3, (5, 6), 2, 1),     # two groups
    (6, 1, 3, (5, 4), 3, 1),     # depthwise with channel multiplier 2 (3 -> 6)
    (3, 1, 3, (4, 5), 3, 1),     # depthwise
    (3, 2, 3, (6, 4), 1, 2),     # stride 2: blocks 3 x 8
    (9, 2, 2, (4, 4), 1, 2),     # stride 2, C_out > C_in s^2: blocks 9 x 8
    (4, 1, 3, (6, 6), 4, 3),     # depthwise, stride 3: blocks 1 x 9
    (4, 3, 3, (8, 4), 2, 2),     # groups and stride
    (2, 2, 1, (6, 3), 1, 3),     # 1 x 1 kernel, stride 3: most input frequencies are lost
])
def test_grouped_and_strided_spectra_equal_the_dense_operator_svd(c_out, c_in_group, k, size, groups, stride):
    kernel = np.random.default_rng(c_out * 31 + groups * 7 + stride).normal(size=(c_out, c_in_group, k, k))
    h, w = size
    got = relusv.conv_singular_values(kernel, size, groups=groups, stride=stride)
    blocks = min(c_out // groups, c_in_group * stride ** 2)
    assert got.shape == ((h // stride) * (w // stride) * groups * blocks,)
    assert_spectrum_of(torch_circular_operator(kernel, h, w, groups, stride), got)
    top = min(5, got.shape[0])
    np.testing.assert_array_equal(relusv.conv_singular_values(kernel, size, k=top, groups=groups, stride=stride),
                                  got[:top])


@pytest.mark.usefixtures("one_torch_thread")
def test_a_conv2d_module_gives_its_groups_stride_and_dilation():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, stride=2, groups=2, dilation=2, padding_mode="circular").double()
    got = relusv.conv_singular_values(conv, (8, 6))
    kernel = conv.weight.detach().numpy()
    assert_spectrum_of(torch_circular_operator(kernel, 8, 6, groups=2, stride=2, dilation=2), got)
    with pytest.raises(ValueError, match="disagrees with the module's groups = 2"):
        relusv.conv_singular_values(conv, 8, groups=1)
    with pytest.raises(ValueError, match="equal strides"):
        relusv.conv_singular_values(torch.nn.Conv2d(2, 2, 3, stride=(1, 2)), 8)
    with pytest.raises(TypeError, match="Conv2d or a weight array, got a ConvTranspose2d"):
        relusv.conv_singular_values(torch.nn.ConvTranspose2d(2, 2, 3), 8)


def test_a_depthwise_weight_alone_reads_as_dense_and_groups_make_it_depthwise():
    kernel = np.random.default_rng(5).normal(size=(8, 1, 3, 3))
    dense = relusv.conv_singular_values(kernel, 6)   # a 1 -> 8 convolution: one value per frequency
    depthwise = relusv.conv_singular_values(kernel, 6, groups=8)
    assert dense.shape == (36,) and depthwise.shape == (8 * 36,)
    # each channel's values are |FFT| of its own 3 x 3 kernel
    expected = np.sort(np.abs(np.fft.fft2(kernel[:, 0], s=(6, 6))).ravel())[::-1]
    np.testing.assert_allclose(depthwise, expected, rtol=1e-12, atol=1e-12 * expected[0])


def test_geometry_refusals_name_the_problem():
    kernel = np.ones((6, 2, 3, 3))
    with pytest.raises(ValueError, match="groups = 4 does not divide the 6 output channels"):
        relusv.conv_singular_values(kernel, 8, groups=4)
    with pytest.raises(ValueError, match="stride = 3 does not divide the input size 8 x 8"):
        relusv.conv_singular_values(kernel, 8, stride=3)
    with pytest.raises(ValueError, match="stride must be positive"):
        relusv.conv_singular_values(kernel, 8, stride=0)
    with pytest.raises(ValueError, match=r"exceeds \(H / s\)\(W / s\) G"):
        relusv.conv_singular_values(kernel, 8, k=10**6, stride=2)


# --- real layer sizes, memory, overflow -------------------------------------------------------------------------

LARGE_LAYER = textwrap.dedent("""
    import json
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import relusv

    # A 3 x 3 kernel with 512 input and output channels on an 8 x 8 input, default threads (one per core).
    kernel = np.random.default_rng(0).normal(size=(512, 512, 3, 3))
    got = relusv.conv_singular_values(kernel, 8)
    # NumPy reference: the singular values of the DFT of the zero-padded kernel at one frequency (u, v) of each
    # conjugate pair (the other has the same values), counted twice unless the pair is one frequency.
    f = np.fft.rfft2(kernel, s=(8, 8))   # columns v = 0 ..< 5; v = 0 and v = 4 hold their own pairs
    frequencies = [(u, v) for v in range(5) for u in range(8) if v in (1, 2, 3) or u <= 4]
    counts = [1 if v in (0, 4) and u in (0, 4) else 2 for u, v in frequencies]
    halves = [frequencies[:17], frequencies[17:]]
    with ThreadPoolExecutor(2) as pool:   # NumPy's SVD releases the GIL
        spectra = [s for part in pool.map(lambda fs: np.linalg.svd(np.stack([f[:, :, u, v] for u, v in fs]),
                                                                       compute_uv=False), halves) for s in part]
    expected = np.sort(np.concatenate([np.tile(s, c) for s, c in zip(spectra, counts)]))[::-1]
    print(json.dumps({"count": len(got), "error": float(np.max(np.abs(got - expected)) / expected[0]),
                      "top": float(got[0])}))
""")


def test_512_channels_with_two_threads_equal_the_fft_reference(python, subprocess_env):
    out = subprocess.run([python, "-c", LARGE_LAYER], env=subprocess_env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])   # -11 was SIGSEGV in OpenBLAS's zgemv
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["count"] == 8 * 8 * 512
    assert report["error"] < 1e-12, report


MEMORY_CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import relusv
    from relusv.conv import conv_memory_bytes

    def in_use():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()

    margin, k = int(sys.argv[1]), (None if sys.argv[2] == "all" else int(sys.argv[2]))
    kernel = np.random.default_rng(0).normal(size=(2, 2, 3, 3))
    size = (512, 512)
    # OpenBLAS maps its GEMM buffer at the first large GEMM (and spins if it cannot): map it here.
    relusv.conv_singular_values(kernel, 256, threads=1)
    count = 512 * 512 * 2 if k is None else k
    needed = conv_memory_bytes(kernel, size, k, threads=1) + 8 * count   # the call's buffers and its output
    limit = in_use() + needed + margin
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        values = relusv.conv_singular_values(kernel, size, k, threads=1)
        print(json.dumps({"result": "ok", "count": len(values), "needed": needed}))
    except relusv.MemoryLimitError as error:
        print(json.dumps({"result": error.status_name, "needed": needed}))
""")


@pytest.mark.parametrize("k", ["all", "1"])
def test_the_memory_estimate_is_what_the_call_uses_under_an_address_space_limit(python, subprocess_env, k):
    # 1 MiB of headroom beyond the estimate passes; 1 MiB short is refused before anything is allocated. (The
    # frequency table and sorted copies once allocated outside the estimate took about 9 MB at this size.)
    # malloc maps every block above 64 KiB and returns it at once, so address space follows the allocations.
    env = dict(subprocess_env, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536")
    runs = {}
    for margin in (1 << 20, -(1 << 20)):
        out = subprocess.run([python, "-c", MEMORY_CHILD, str(margin), k], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and "Fatal error" not in out.stderr, out.stderr[-2000:]
        runs[margin > 0] = json.loads(out.stdout.strip().splitlines()[-1])
    assert runs[True]["result"] == "ok" and runs[True]["count"] == (512 * 512 * 2 if k == "all" else 1)
    assert runs[False]["result"] == "RELUSV_ERROR_OUT_OF_MEMORY"


def test_the_memory_limit_at_the_estimate_passes_and_just_below_refuses():
    kernel = np.random.default_rng(1).normal(size=(32, 32, 3, 3))
    needed = relusv.conv.conv_memory_bytes(kernel, 32, threads=2) + 8 * 32 * 32 * 32
    default = relusv.memory_limit()
    try:
        relusv.set_memory_limit(needed)
        assert relusv.conv_singular_values(kernel, 32, threads=2).shape == (32 * 32 * 32,)
        relusv.set_memory_limit(needed - 1)
        with pytest.raises(relusv.MemoryLimitError):
            relusv.conv_singular_values(kernel, 32, threads=2)
    finally:
        relusv.set_memory_limit(default)


@pytest.mark.parametrize("dtype, power", [(np.float64, 1000), (np.float64, -1000), (np.float32, 100),
                                          (np.float32, -100)])
def test_large_and_small_kernels_are_scaled_exactly(dtype, power):
    kernel = np.random.default_rng(6).normal(size=(4, 3, 3, 3)).astype(dtype)
    base = relusv.conv_singular_values(kernel, 6, stride=2)
    scaled = relusv.conv_singular_values(kernel * dtype(2.0) ** power, 6, stride=2)
    assert np.all(np.isfinite(scaled))
    np.testing.assert_array_equal(scaled, base * dtype(2.0) ** power)   # powers of two: bit for bit


@pytest.mark.parametrize("dtype, entry", [(np.float64, 1e308), (np.float32, 3e38)])
def test_entries_near_the_largest_float_give_values_or_nonfinite_never_nan(dtype, entry):
    ones = np.ones((2, 2, 3, 3), dtype=dtype)
    # values up to 36 entries (the constant frequency): beyond the range, so NONFINITE
    with pytest.raises(ValueError, match="exceeds the largest finite") as info:
        relusv.conv_singular_values(ones * dtype(entry), 8)
    assert info.value.status_name == "RELUSV_ERROR_NONFINITE"
    # a kernel whose values fit: entries near the largest float, values computed exactly from the scaled kernel
    kernel = np.zeros((2, 2, 3, 3), dtype=dtype)
    kernel[0, 0, 0, 0] = kernel[1, 1, 0, 0] = dtype(entry)
    got = relusv.conv_singular_values(kernel, 8)
    assert np.all(np.isfinite(got)) and got.dtype == dtype
    np.testing.assert_array_equal(got, np.full(128, dtype(entry)))


def test_the_options_struct_size_is_checked():
    import ctypes

    from relusv import _native
    from relusv.conv import _Request

    request = _Request(np.ones((2, 2, 3, 3)), 8, None, None, None, None)
    assert request.options.struct_size == ctypes.sizeof(_native.ConvOptions)
    assert (request.options.groups, request.options.stride, request.options.top) == (1, 1, 0)
    request.options.struct_size = ctypes.sizeof(_native.ConvOptions) + 8
    with pytest.raises(ValueError, match="newer relusv.h"):
        request.call(None, None, _native.PROGRESS_FN())
    request.options.struct_size = 8
    with pytest.raises(ValueError, match="is not the size of any version"):
        request.call(None, None, _native.PROGRESS_FN())
    # NULL options: the defaults (no groups, stride 1, all values)
    status = _native.lib.relusv_conv_spectrum(ctypes.byref(request.matrix), 2, 3, 3, 8, 8, None, None, None,
                                              _native.PROGRESS_FN(), None)
    assert status == 0
