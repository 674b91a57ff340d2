"""Accumulator state format v2: checksum, reserved fields, caps before allocation, v1 still read."""
from __future__ import annotations

import pickle
import struct
import time
import zlib

import numpy as np
import pytest
import relusv

HEADER = struct.Struct("<4sIII QQQQ")


def small_state(rng, dtype="float64") -> tuple[relusv.GMWAccumulator, bytes]:
    acc = relusv.GMWAccumulator(5, samples=4, seed=7, dtype=dtype).update(rng.normal(size=(30, 5)))
    return acc, acc.to_bytes()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_single_bit_flip_is_refused(rng, dtype):
    _, state = small_state(rng, dtype)
    assert len(state) == 48 + 16 * 4 + 4
    accepted = []
    for bit in range(8 * len(state)):
        mutated = bytearray(state)
        mutated[bit // 8] ^= 1 << (bit % 8)
        try:
            relusv.GMWAccumulator.from_bytes(bytes(mutated))
            accepted.append(bit)
        except relusv.InvalidInputError as error:
            assert error.status_name == "RELUSV_ERROR_CORRUPT_STATE"
    assert accepted == []


def test_checksum_is_zlib_crc32_and_random_corruption_is_refused(rng):
    _, state = small_state(rng)
    assert struct.unpack_from("<I", state, len(state) - 4)[0] == zlib.crc32(state[:-4])
    for _trial in range(300):  # several bytes changed at once
        mutated = bytearray(state)
        for i in rng.choice(len(state), size=int(rng.integers(2, 8)), replace=False):
            mutated[i] ^= int(rng.integers(1, 256))
        with pytest.raises(relusv.InvalidInputError):
            relusv.GMWAccumulator.from_bytes(bytes(mutated))


def test_version_1_states_are_still_read(rng):
    acc, state = small_state(rng)
    v1 = state[:4] + struct.pack("<I", 1) + state[8:-4]  # version 1: no checksum
    old = relusv.GMWAccumulator.from_bytes(v1)
    assert (old.dimension, old.samples, old.seed, old.points) == (5, 4, 7, 30)
    np.testing.assert_array_equal(old.extremes, acc.extremes)
    assert old.to_bytes() == state  # re-exported as version 2


def test_reserved_field_is_checked_in_both_versions(rng):
    _, state = small_state(rng)
    body = state[:12] + struct.pack("<I", 5) + state[16:-4]
    for forged in (body + struct.pack("<I", zlib.crc32(body)), body[:4] + struct.pack("<I", 1) + body[8:]):
        with pytest.raises(relusv.InvalidInputError, match="reserved"):
            relusv.GMWAccumulator.from_bytes(forged)


def test_huge_dimension_state_is_refused_fast():
    # 64 bytes: a version-1 header claiming dimension 2^30 and one sample (8 GiB of directions).
    state = HEADER.pack(b"RSVW", 1, 64, 0, 2**30, 1, 0, 0) + struct.pack("<dd", -np.inf, np.inf)
    assert len(state) == 64
    started = time.perf_counter()
    with pytest.raises(relusv.InvalidInputError, match="exceeds the limit") as info:
        relusv.GMWAccumulator.from_bytes(state)
    assert time.perf_counter() - started < 0.5
    assert info.value.status_name == "RELUSV_ERROR_CORRUPT_STATE"
    with pytest.raises(relusv.InvalidInputError):  # through pickle too
        pickle.loads(pickle.dumps(relusv.GMWAccumulator(3, samples=2))
                     .replace(HEADER.pack(b"RSVW", 2, 64, 0, 3, 2, 0, 0)[:16], state[:16]))


def test_pickle_round_trip_keeps_the_accumulator_alive(rng):
    acc, _ = small_state(rng)
    copy = pickle.loads(pickle.dumps(acc))
    import gc
    gc.collect()
    assert copy.estimate() == acc.estimate()
    copy.update(rng.normal(size=(3, 5)))
    assert copy.points == 33
