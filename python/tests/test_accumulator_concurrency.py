"""One accumulator shared by several threads, and validation of merged extremes."""
import threading

import numpy as np
import pytest
import relusv


def test_concurrent_updates_on_one_accumulator_lose_no_points():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 30))
    batches = np.array_split(x, 40)
    expected = relusv.gmw(x, seed=5, trim=0, return_details=True)
    for _ in range(5):
        acc = relusv.GMWAccumulator(30, seed=5)
        threads = [threading.Thread(target=lambda part=part, acc=acc: [acc.update(b) for b in part])
                   for part in (batches[i::8] for i in range(8))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert acc.points == len(x)
        got = acc.estimate(trim=0, return_details=True)
        # Per-direction extremes are maxima/minima of the same products: equal
        # up to the rounding of single products under different blockings.
        np.testing.assert_allclose(got.sample_widths, expected.sample_widths, rtol=1e-12)


def test_merging_an_accumulator_into_itself_is_refused():
    acc = relusv.GMWAccumulator(3, seed=1).update(np.eye(3))
    with pytest.raises(ValueError, match="itself"):
        acc.merge(acc)
    assert acc.points == 3


@pytest.mark.parametrize("maxima,minima,points,message", [
    (np.inf, 0.0, 5, "finite"),
    (0.0, 1.0, 5, "below its minimum"),
    (1.0, 0.0, 0, "0 points"),
])
def test_merge_extremes_rejects_impossible_states(maxima, minima, points, message):
    acc = relusv.GMWAccumulator(4, samples=10, seed=2).update(np.ones((2, 4)))
    before = acc.to_bytes()
    with pytest.raises(ValueError, match=message):
        acc.merge_extremes(np.full(10, maxima), np.full(10, minima), points)
    assert acc.to_bytes() == before


def test_import_rejects_inconsistent_extremes():
    acc = relusv.GMWAccumulator(4, samples=10, seed=2).update(np.ones((2, 4)))
    state = bytearray(acc.to_bytes())
    hi = np.frombuffer(state, dtype="<f8", count=10, offset=48).copy()
    state[48:48 + 80] = (hi - 1e6).astype("<f8").tobytes()  # maxima far below minima
    with pytest.raises(ValueError, match="invalid accumulator state"):
        relusv.GMWAccumulator.from_bytes(bytes(state))
