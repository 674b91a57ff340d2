"""``relusv.WeightSVD``: one SVD of ``W`` shared by several bound curves of a layer.

A curve given the shared SVD must report exactly what it reports alone (the SVD is computed by the
same routine at one OpenBLAS thread); the SVD's values are checked against NumPy's SVD (an independent
LAPACK call), block-diagonal matrices included (the engine's union of the blocks' SVDs); a shared SVD of
another matrix or precision, or a closed one, is refused with an error naming it.
"""
import numpy as np
import pytest
import relusv
from relusv import InvalidInputError, InvalidTypeError, WeightSVD


def _layer(m=24, n=18, points=150, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(m, n)).astype(dtype), rng.normal(size=m).astype(dtype),
            np.abs(rng.normal(size=(points, n))).astype(dtype))


def _assert_certified(r, w, b, x):
    """Each bound of ``r`` recomputed in float64 from its returned factors (the exact error over ``x``)."""
    w64, b64, x64 = (np.asarray(a, dtype=np.float64) for a in (w, b, x))
    for bound, (u, v) in zip(r.bound, r.factors):
        u, v = u.astype(np.float64), v.astype(np.float64)
        error = np.linalg.norm(np.maximum(x64 @ w64.T + b64, 0) - np.maximum(x64 @ v.T @ u.T + b64, 0), axis=1).max()
        assert bound == pytest.approx(error, rel=1e-12, abs=1e-12)


def _same(a, b):
    np.testing.assert_array_equal(a.bound, b.bound)
    np.testing.assert_array_equal(a.truncation_bound, b.truncation_bound)
    np.testing.assert_array_equal(a.sigma, b.sigma)
    assert a.source == b.source


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_shared_svd_gives_the_same_curve_bit_for_bit(dtype):
    w, b, x = _layer(dtype=dtype)
    ks = [0, 2, 5, 9, 14]
    with WeightSVD(w) as svd:
        for part in (x[:70], x[70:]):          # two groups of points, one SVD
            alone = relusv.relu_singular_values(w, b, part, ks, max_steps=30, threads=1, seed=1)
            shared = relusv.relu_singular_values(w, b, part, ks, max_steps=30, threads=1, seed=1, weight_svd=svd)
            _same(alone, shared)
            assert shared.dtype == np.dtype(dtype).name


def test_grouped_points_and_a_scaled_layer():
    w, b, x = _layer(m=10, n=12, points=60)
    ks = [0, 3, 7]
    # group_size: every 3 rows one point (a convolution's patches); a tiny layer is evaluated scaled by 2^k.
    for scale in (1.0, 2.0 ** -540):
        with WeightSVD(w * scale) as svd:
            alone = relusv.relu_singular_values(w * scale, b * scale, x, ks, group_size=3, max_steps=20, seed=2)
            shared = relusv.relu_singular_values(w * scale, b * scale, x, ks, group_size=3, max_steps=20, seed=2,
                                                 weight_svd=svd)
        _same(alone, shared)


def test_values_against_numpy_dense_and_blocks():
    rng = np.random.default_rng(3)
    dense = rng.normal(size=(30, 50))
    depthwise = np.zeros((12, 12 * 9))            # a depthwise 3x3 kernel matrix: blocks 1 x 9
    for c in range(12):
        depthwise[c, 9 * c:9 * c + 9] = rng.normal(size=9)
    diagonal = np.diag(rng.normal(size=16))       # a folded BatchNorm
    for w in (dense, depthwise, diagonal, dense.astype(np.float32)):
        expected = np.linalg.svd(w.astype(np.float64), compute_uv=False)
        tol = (1e-5 if w.dtype == np.float32 else 1e-12) * expected[0]
        with WeightSVD(w) as svd:
            assert svd.shape == w.shape
            np.testing.assert_allclose(svd.values, expected, rtol=0, atol=tol)
        np.testing.assert_allclose(relusv.singular_values(w), expected, rtol=0, atol=tol)
        u, s, vt = relusv.truncated_svd(w.astype(np.float64), min(w.shape))
        np.testing.assert_allclose((u * s) @ vt, w, rtol=0, atol=1e-12 * expected[0])
        np.testing.assert_allclose(u.T @ u, np.eye(u.shape[1]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(vt @ vt.T, np.eye(vt.shape[0]), rtol=0, atol=1e-12)


def test_a_depthwise_curve_with_its_shared_svd_is_certified():
    rng = np.random.default_rng(4)
    w = np.zeros((8, 72))
    for c in range(8):
        w[c, 9 * c:9 * c + 9] = rng.normal(size=9)
    b, x = rng.normal(size=8), rng.normal(size=(90, 72))
    with WeightSVD(w) as svd:
        r = relusv.relu_singular_values(w, b, x, [0, 2, 5], max_steps=20, return_factors=True, weight_svd=svd)
    _assert_certified(r, w, b, x)


def test_the_wrong_svd_is_refused():
    w, b, x = _layer()
    with WeightSVD(w) as svd:
        other = w.copy()
        other[3, 4] = np.nextafter(other[3, 4], np.inf)   # one entry one ulp away
        with pytest.raises(InvalidInputError, match="SVD of another matrix"):
            relusv.relu_singular_values(other, b, x, [0, 3], weight_svd=svd)
        with pytest.raises(InvalidInputError, match="SVD of another matrix"):
            relusv.relu_singular_values(w[:, :10], b, x[:, :10], [0, 3], weight_svd=svd)
    with pytest.raises(InvalidInputError, match="closed"):
        relusv.relu_singular_values(w, b, x, [0, 3], weight_svd=svd)
    with WeightSVD(w.astype(np.float32)) as single:   # float32 factors, a float64 computation
        with pytest.raises(InvalidTypeError, match="float32 SVD but this call computes in float64"):
            relusv.relu_singular_values(w, b, x, [0, 3], weight_svd=single)
    with pytest.raises(InvalidTypeError, match="relusv.WeightSVD"):
        relusv.relu_singular_values(w, b, x, [0, 3], weight_svd=(1, 2, 3))


def test_bad_weights_are_refused():
    for bad, match in ((np.array([[1.0, np.nan]]), "NaN"), (np.zeros((0, 3)), "no rows"),
                       (np.ones(4), "2-D")):
        with pytest.raises(InvalidInputError, match=match):
            WeightSVD(bad)


def test_the_memory_limit_is_checked_before_the_factors():
    from relusv import MemoryLimitError

    w = np.ones((1500, 1500))            # U, Vt and the working copy: about 54 MB
    relusv.set_memory_limit(16 << 20)
    try:
        with pytest.raises(MemoryLimitError, match="the SVD of W"):
            WeightSVD(w)
    finally:
        relusv.set_memory_limit(None)


def test_the_sphere_sample_curve_with_a_shared_svd():
    w, _, _ = _layer(m=12, n=9)
    with WeightSVD(w) as svd:
        alone = relusv.relu_singular_values(w, ks=[0, 3, 6], sphere_points=300, max_steps=20, seed=5)
        shared = relusv.relu_singular_values(w, ks=[0, 3, 6], sphere_points=300, max_steps=20, seed=5, weight_svd=svd)
    _same(alone, shared)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(40, 260), (260, 40), (60, 80)])   # wide with QR, tall with QR, wide without
def test_leading_pairs_against_numpy(dtype, shape):
    # Every value as NumPy's dense SVD gives it; the held pairs orthonormal singular pairs of W (in float64).
    rng = np.random.default_rng(6)
    w = (rng.normal(size=shape) * 0.9 ** np.arange(shape[1])).astype(dtype)
    expected = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    eps = 2e-5 if dtype == np.float32 else 1e-12
    with WeightSVD(w, vectors=7) as svd:
        assert svd.vectors == 7
        np.testing.assert_allclose(svd.values, expected, rtol=0, atol=eps * expected[0])
        x = np.abs(rng.normal(size=(30, shape[1]))).astype(dtype)
        b = rng.normal(size=shape[0]).astype(dtype)
        r = relusv.relu_singular_values(w, b, x, [0, 3, 7], max_steps=20, return_factors=True, weight_svd=svd,
                                        seed=1)
    _assert_certified(r, w, b, x)
    # the truncated-SVD bound t_k and sigma_k are those of the full SVD, to rounding
    with WeightSVD(w) as full:
        alone = relusv.relu_singular_values(w, b, x, [0, 3, 7], max_steps=20, weight_svd=full, seed=1)
    np.testing.assert_allclose(r.sigma, alone.sigma, rtol=10 * eps)
    np.testing.assert_allclose(r.truncation_bound, alone.truncation_bound, rtol=100 * eps)


def test_leading_pairs_cover_the_curves_k_only():
    w, b, x = _layer(m=30, n=80, points=40)
    with WeightSVD(w, vectors=5) as svd:
        assert svd.vectors == 5
        relusv.relu_singular_values(w, b, x, [0, 5], max_steps=10, weight_svd=svd)
        with pytest.raises(InvalidInputError, match="5 largest values only; k = 6 needs"):
            relusv.relu_singular_values(w, b, x, [0, 6], max_steps=10, weight_svd=svd)
    with WeightSVD(w, vectors=10**6) as every:       # more than min(m, n): all pairs, the curve's own SVD
        assert every.vectors == 30
        _same(relusv.relu_singular_values(w, b, x, [0, 4], max_steps=10, seed=2),
              relusv.relu_singular_values(w, b, x, [0, 4], max_steps=10, seed=2, weight_svd=every))
    for bad, error in ((-1, InvalidInputError), (2.5, InvalidTypeError), (True, InvalidTypeError)):
        with pytest.raises(error, match="vectors"):
            WeightSVD(w, vectors=bad)


@pytest.mark.parametrize("case", ["zero", "rank-one", "orthonormal-rows", "float32-decaying"])
def test_leading_pairs_where_lapack_finds_more_than_asked(case):
    # LAPACK's ?bdsvdx widens the index range to an interval of values and may find more pairs than asked
    # (a zero or low-rank W asked for more than its rank, values tied across the count): the values stay
    # NumPy's and each bound of a curve reading the pairs is the float64 error of its factors.
    rng = np.random.default_rng(7)
    if case == "zero":
        w = np.zeros((20, 70))
    elif case == "rank-one":
        w = np.outer(rng.normal(size=25), rng.normal(size=80))
    elif case == "orthonormal-rows":
        w = np.linalg.qr(rng.normal(size=(80, 20)))[0].T
    else:
        w = (rng.normal(size=(60, 80)) * 0.8 ** np.arange(80)).astype(np.float32)
    count = 3
    expected = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    x = np.abs(rng.normal(size=(12, w.shape[1]))).astype(w.dtype)
    b = rng.normal(size=w.shape[0]).astype(w.dtype)
    with WeightSVD(w, vectors=count) as svd:
        assert svd.vectors == count
        eps = 2e-5 if w.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(svd.values, expected, rtol=0, atol=eps * max(expected[0], 1))
        r = relusv.relu_singular_values(w, b, x, [0, 1, 3], max_steps=10, return_factors=True, weight_svd=svd)
    _assert_certified(r, w, b, x)


def test_factors_read_back():
    # (U * s) @ Vt of the first r pairs is the rank-r truncation NumPy's SVD gives; fewer pairs held, fewer read.
    rng = np.random.default_rng(8)
    w = rng.normal(size=(30, 90)) * 0.85 ** np.arange(90)
    u0, s0, vt0 = np.linalg.svd(w, full_matrices=False)
    for vectors in (None, 6):
        with WeightSVD(w, vectors=vectors) as svd:
            u, s, vt = svd.factors(5)
            assert u.shape == (30, 5) and s.shape == (5,) and vt.shape == (5, 90)
            np.testing.assert_allclose((u * s) @ vt, (u0[:, :5] * s0[:5]) @ vt0[:5], rtol=0, atol=1e-12 * s0[0])
            assert svd.factors()[0].shape[1] == svd.vectors
            with pytest.raises(InvalidInputError, match="count"):
                svd.factors(svd.vectors + 1)
    with pytest.raises(InvalidInputError, match="closed"):
        svd.factors(1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(40, 260), (260, 40), (80, 80)])
def test_values_and_pairs_from_the_gram_matrix(dtype, shape):
    # Asked to float32's accuracy, a well-conditioned W's values come from its Gram matrix: within
    # eps^(3/4) sigma_0 of NumPy's SVD (eps of the precision computed in), every bound still the exact error
    # of its factors (recomputed in float64).
    rng = np.random.default_rng(8)
    w = (rng.normal(size=shape) * 0.99 ** np.arange(shape[1])).astype(dtype)
    expected = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    eps = np.finfo(dtype).eps
    tolerance = max(float(np.finfo(np.float32).eps), eps ** 0.75)
    accuracy = 2 * eps ** 0.75 + (2e-6 if dtype == np.float32 else 0)   # float32 W: plus the float32 rounding
    np.testing.assert_allclose(relusv.singular_values(w, tolerance=tolerance), expected, rtol=0,
                               atol=accuracy * expected[0])
    with WeightSVD(w, vectors=7, tolerance=tolerance) as svd, WeightSVD(w, vectors=7) as plain:
        np.testing.assert_allclose(svd.values, expected, rtol=0, atol=accuracy * expected[0])
        if dtype == np.float64:
            assert not np.array_equal(svd.values, plain.values)   # another route than the SVD's
        x = np.abs(rng.normal(size=(30, shape[1]))).astype(dtype)
        b = rng.normal(size=shape[0]).astype(dtype)
        r = relusv.relu_singular_values(w, b, x, [0, 3, 7], max_steps=20, return_factors=True, weight_svd=svd,
                                        seed=1)
    _assert_certified(r, w, b, x)


def test_the_svd_where_the_gram_matrix_does_not_resolve_the_values():
    # Condition 1e6 > eps^(-1/4): the values the SVD gives, bit for bit, whatever the tolerance asked.
    rng = np.random.default_rng(9)
    u, _ = np.linalg.qr(rng.normal(size=(50, 50)))
    v, _ = np.linalg.qr(rng.normal(size=(90, 50)))
    w = (u * np.geomspace(1, 1e-6, 50)) @ v.T
    np.testing.assert_array_equal(relusv.singular_values(w, tolerance=1e-3), relusv.singular_values(w))
    with WeightSVD(w, vectors=4, tolerance=1e-3) as svd, WeightSVD(w, vectors=4) as plain:
        np.testing.assert_array_equal(svd.values, plain.values)


@pytest.mark.parametrize("bad, error", [(-1e-7, InvalidInputError), (float("nan"), InvalidInputError),
                                        (float("inf"), InvalidInputError), ("1e-7", InvalidTypeError)])
def test_a_bad_tolerance_is_named(bad, error):
    w = np.eye(3)
    with pytest.raises(error, match="tolerance"):
        relusv.singular_values(w, tolerance=bad)
    with pytest.raises(error, match="tolerance"):
        WeightSVD(w, vectors=1, tolerance=bad)


@pytest.mark.parametrize("tolerance", [0.0, 1e-7])
def test_singular_values_check_their_memory_first(tolerance):
    # Two copies of W (the one LAPACK overwrites, a block's gathered one), a p x p square and its Cholesky
    # copy, and the workspace: 400 x 300 doubles need about 3.4 MB; refused below that, named.
    w = np.random.default_rng(10).normal(size=(400, 300))
    needed = 8 * (2 * 400 * 300 + 2 * 300 * 300 + 400 + 8 * 300)
    default = relusv.memory_limit()
    try:
        relusv.set_memory_limit(needed)
        assert relusv.singular_values(w, tolerance=tolerance).shape == (300,)
        relusv.set_memory_limit(needed - 1)
        with pytest.raises(relusv.MemoryLimitError, match="singular values of W"):
            relusv.singular_values(w, tolerance=tolerance)
    finally:
        relusv.set_memory_limit(default)
