"""GMWAccumulator: streaming, merging, all-reduce and the serialised state.

Merging, all-reduce and serialisation are exact operations on per-direction
maxima and minima: compared for equality. Streaming versus one call differs
only by the rounding of single products <g, x>, which BLAS may round
differently depending on the shape of the call: compared with the standard
bound |fl(<g, x>) - <g, x>| <= k eps ||g|| ||x|| (k = dimension), twice (max and min).
"""
from __future__ import annotations

import pickle
import struct
import zlib

import numpy as np
import pytest
import relusv
from conftest import relusv_directions

HEADER = struct.Struct("<4sIII QQQQ")  # the documented state header (versions 1 and 2)
CRC = struct.Struct("<I")  # version 2: zlib's CRC-32 of everything before it, at the end


def assert_within_rounding(widths, reference, x, seed):
    """|widths - reference| <= 2 k eps ||g_j|| max_i ||x_i||, direction by direction."""
    x = np.asarray(x)
    k, eps = x.shape[1], np.finfo(x.dtype).eps
    g = relusv_directions(k, widths.size, seed, dtype=str(x.dtype))
    bound = 2 * k * eps * np.linalg.norm(g, axis=1) * np.linalg.norm(x.astype(np.float64), axis=1).max()
    assert np.all(np.abs(widths - reference) <= bound)


def random_splits(rng, n, parts):
    cuts = np.sort(rng.choice(np.arange(1, n), size=parts - 1, replace=False))
    return np.split(np.arange(n), cuts)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("trial", range(3))
def test_streaming_equals_one_shot(rng, dtype, trial):
    x = rng.normal(size=(3000, 17)).astype(dtype)
    one = relusv.gmw(x, samples=300, seed=trial, return_details=True)
    acc = relusv.GMWAccumulator(17, samples=300, seed=trial, dtype=dtype)
    for idx in random_splits(rng, len(x), parts=int(rng.integers(2, 12))):
        acc.update(x[idx])
    acc.update(x[:0])  # an empty batch is a no-op
    r = acc.estimate(return_details=True)
    assert_within_rounding(r.sample_widths, one.sample_widths, x, seed=trial)
    assert r.estimate == pytest.approx(one.estimate, rel=1e-5 if dtype == "float32" else 1e-13)
    assert r.points == acc.points == 3000


def test_single_point_batches(rng):
    x = rng.normal(size=(40, 3))
    acc = relusv.GMWAccumulator(3, samples=50, seed=1)
    for row in x:
        acc.update(row[None, :])
    one = relusv.gmw(x, samples=50, seed=1, return_details=True)
    assert_within_rounding(acc.estimate(return_details=True).sample_widths, one.sample_widths, x, seed=1)


def test_merge_is_order_independent(rng):
    x = rng.normal(size=(900, 5))
    parts = np.array_split(x, 4)
    orders = [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]]
    results = []
    for order in orders:
        accs = [relusv.GMWAccumulator(5, samples=64, seed=2).update(parts[i]) for i in order]
        total = accs[0]
        for other in accs[1:]:
            total.merge(other)
        results.append(total.extremes)
    for hi, lo in results[1:]:
        np.testing.assert_array_equal(hi, results[0][0])
        np.testing.assert_array_equal(lo, results[0][1])
    # tree-shaped merge equals the one-shot result
    a = relusv.GMWAccumulator(5, samples=64, seed=2).update(parts[0]).merge(
        relusv.GMWAccumulator(5, samples=64, seed=2).update(parts[1]))
    b = relusv.GMWAccumulator(5, samples=64, seed=2).update(parts[2]).merge(
        relusv.GMWAccumulator(5, samples=64, seed=2).update(parts[3]))
    merged = a.merge(b).estimate(return_details=True)
    streamed = relusv.GMWAccumulator(5, samples=64, seed=2)
    for p in parts:
        streamed.update(p)
    np.testing.assert_array_equal(merged.sample_widths, streamed.estimate(return_details=True).sample_widths)
    assert_within_rounding(merged.sample_widths, relusv.gmw(x, samples=64, seed=2, return_details=True).sample_widths,
                           x, seed=2)
    assert a.points == 900


def test_merge_extremes_all_reduce(rng):
    # Data-parallel form: each worker reports its extremes; MAX/MIN reduce them;
    # any accumulator (here an empty one) merges the result.
    x = rng.normal(size=(1000, 6))
    workers = [relusv.GMWAccumulator(6, samples=80, seed=7).update(p) for p in np.array_split(x, 5)]
    his, los = zip(*(w.extremes for w in workers))
    total = relusv.GMWAccumulator(6, samples=80, seed=7)
    total.merge_extremes(np.max(his, axis=0), np.min(los, axis=0), points=sum(w.points for w in workers))
    chained = workers[0]
    for w in workers[1:]:
        chained.merge(w)
    np.testing.assert_array_equal(total.extremes, chained.extremes)
    assert total.estimate() == pytest.approx(relusv.gmw(x, samples=80, seed=7), rel=1e-13)
    assert total.points == 1000


def test_merge_extremes_accepts_torch_tensors(rng):
    torch = pytest.importorskip("torch")
    a = relusv.GMWAccumulator(3, samples=10, seed=1).update(rng.normal(size=(20, 3)))
    hi, lo = a.extremes
    b = relusv.GMWAccumulator(3, samples=10, seed=1)
    b.merge_extremes(torch.from_numpy(hi), torch.from_numpy(lo), a.points)
    assert b.estimate() == a.estimate()


def test_merge_extremes_rejects_bad_input():
    acc = relusv.GMWAccumulator(3, samples=4)
    with pytest.raises(ValueError, match="4 values"):
        acc.merge_extremes(np.zeros(3), np.zeros(4), 1)
    with pytest.raises(ValueError, match="NaN"):
        acc.merge_extremes(np.array([0, np.nan, 0, 0]), np.zeros(4), 1)
    with pytest.raises(ValueError, match="points"):
        acc.merge_extremes(np.zeros(4), np.zeros(4), -1)
    with pytest.raises(ValueError, match="points"):
        acc.merge_extremes(np.zeros(4), np.zeros(4), 2**64 + 1)
    with pytest.raises(TypeError, match="points"):
        acc.merge_extremes(np.zeros(4), np.zeros(4), 1.5)
    assert acc.points == 0


def test_point_count_overflow_is_an_error_not_a_crash():
    acc = relusv.GMWAccumulator(2, samples=3)
    acc.merge_extremes(np.zeros(3), np.zeros(3), 2**63 - 1)
    other = relusv.GMWAccumulator(2, samples=3).update(np.ones((1, 2)))
    for attempt in (lambda: acc.merge_extremes(np.zeros(3), np.zeros(3), 5), lambda: acc.update(np.ones((2, 2))),
                    lambda: acc.merge(other)):
        with pytest.raises(ValueError, match="overflows"):
            attempt()
    assert acc.points == 2**63 - 1


def test_merge_rejects_different_directions():
    a = relusv.GMWAccumulator(3, samples=10, seed=1)
    for other in (relusv.GMWAccumulator(3, samples=10, seed=2), relusv.GMWAccumulator(4, samples=10, seed=1),
                  relusv.GMWAccumulator(3, samples=11, seed=1)):
        with pytest.raises(ValueError, match="different directions"):
            a.merge(other)
    with pytest.raises(ValueError, match="float32"):
        a.merge(relusv.GMWAccumulator(3, samples=10, seed=1, dtype="float32"))
    with pytest.raises(TypeError):
        a.merge(np.zeros((3, 3)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_state_round_trip(rng, dtype):
    x = rng.normal(size=(500, 9))
    acc = relusv.GMWAccumulator(9, samples=33, seed=2**64 - 1, dtype=dtype).update(x[:300])
    state = acc.to_bytes()
    full = relusv.GMWAccumulator(9, samples=33, seed=2**64 - 1, dtype=dtype).update(x[:300]).update(x[300:])
    assert len(state) == HEADER.size + 16 * 33 + CRC.size
    magic, version, bits, reserved, dim, samples, seed, points = HEADER.unpack_from(state)
    assert (magic, version, bits, reserved, dim, samples, seed, points) == \
        (b"RSVW", 2, 32 if dtype == "float32" else 64, 0, 9, 33, 2**64 - 1, 300)
    assert CRC.unpack_from(state, len(state) - CRC.size)[0] == zlib.crc32(state[:-CRC.size])
    for copy in (relusv.GMWAccumulator.from_bytes(state), pickle.loads(pickle.dumps(acc))):
        assert (copy.dimension, copy.samples, copy.seed, copy.points, copy.dtype) == \
            (9, 33, 2**64 - 1, 300, np.dtype(dtype))
        np.testing.assert_array_equal(copy.extremes[0], acc.extremes[0])
        # the restored accumulator continues with the same directions
        copy.update(x[300:])
        np.testing.assert_array_equal(copy.extremes, full.extremes)


def test_state_of_an_empty_accumulator_round_trips():
    acc = relusv.GMWAccumulator(2, samples=3)
    copy = relusv.GMWAccumulator.from_bytes(acc.to_bytes())
    assert copy.points == 0
    with pytest.raises(ValueError, match="no points"):
        copy.estimate()


def corrupt(state: bytes, offset: int, data: bytes) -> bytes:
    """``data`` written at ``offset`` with the checksum recomputed, so that the field checks are reached."""
    body = state[:-CRC.size]
    body = body[:offset] + data + body[offset + len(data):]
    return body + CRC.pack(zlib.crc32(body))


@pytest.mark.parametrize("mutation,message", [
    (lambda s: s[:20], "shorter than"),
    (lambda s: s[:-1], "do not match"),
    (lambda s: s + b"\0", "do not match"),
    (lambda s: corrupt(s, 0, b"XXXX"), "magic"),
    (lambda s: corrupt(s, 4, struct.pack("<I", 3)), "version"),
    (lambda s: corrupt(s, 12, struct.pack("<I", 1)), "reserved"),
    (lambda s: s[:34] + bytes([s[34] ^ 4]) + s[35:], "checksum"),
    (lambda s: corrupt(s, 8, struct.pack("<I", 16)), "precision"),
    (lambda s: corrupt(s, 16, struct.pack("<Q", 0)), "out of range"),
    (lambda s: corrupt(s, 24, struct.pack("<Q", 2**62)), "do not match"),
    (lambda s: corrupt(s, 24, struct.pack("<Q", 5)), "do not match|checksum"),
    (lambda s: corrupt(s, 40, struct.pack("<Q", 2**64 - 1)), "out of range"),
    (lambda s: corrupt(s, 48, struct.pack("<d", float("nan"))), "NaN"),
    (lambda s: b"", "shorter than"),
])
def test_corrupt_state_is_rejected(rng, mutation, message):
    state = relusv.GMWAccumulator(4, samples=6, seed=3).update(rng.normal(size=(10, 4))).to_bytes()
    with pytest.raises(ValueError, match=message) as info:
        relusv.GMWAccumulator.from_bytes(mutation(state))
    assert info.value.status_name == "RELUSV_ERROR_CORRUPT_STATE"


def test_huge_declared_state_is_an_error_not_a_crash():
    # A version-1 header (no checksum) that passes the range checks but asks for terabytes of directions.
    state = HEADER.pack(b"RSVW", 1, 64, 0, 2**20, 2**20, 0, 0) + b"\0" * (16 * 2**20)
    with pytest.raises(ValueError, match="exceeds the limit"):
        relusv.GMWAccumulator.from_bytes(state)


def test_update_converts_to_the_accumulator_dtype(rng):
    x = rng.normal(size=(100, 4))
    acc = relusv.GMWAccumulator(4, samples=20, dtype="float32").update(x)
    np.testing.assert_array_equal(acc.extremes, relusv.GMWAccumulator(4, samples=20, dtype="float32")
                                  .update(x.astype(np.float32)).extremes)
    acc.update([[0, 0, 0, 1]])  # nested lists and integers
    assert acc.points == 101


def test_update_rejects_bad_batches(rng):
    acc = relusv.GMWAccumulator(4, samples=20)
    with pytest.raises(ValueError, match="3 columns but the accumulator has dimension 4"):
        acc.update(np.zeros((5, 3)))
    x = rng.normal(size=(50, 4))
    x[17, 2] = np.inf
    with pytest.raises(ValueError, match="row 17, column 2"):
        acc.update(x)
    assert acc.points == 0  # all or nothing
    with pytest.raises(ValueError, match="no points"):
        acc.estimate()


def test_constructor_and_lifetime():
    with pytest.raises(ValueError):
        relusv.GMWAccumulator(0)
    with pytest.raises(ValueError):
        relusv.GMWAccumulator(3, samples=0)
    with pytest.raises(TypeError):
        relusv.GMWAccumulator(3, dtype="int32")
    with pytest.raises(relusv.MemoryLimitError, match="exceed the limit"):
        relusv.GMWAccumulator(10**6, samples=10**6)
    with relusv.GMWAccumulator(3, samples=5, seed=4) as acc:
        assert "dimension=3, samples=5, seed=4" in repr(acc)
    assert repr(acc) == "GMWAccumulator(<closed>)"
    with pytest.raises(ValueError, match="closed"):
        acc.estimate()
    acc.close()  # closing twice is harmless
