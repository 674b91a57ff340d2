"""relusv.pruning_rules: the cut choice, the floor, the disjoint sets and the schedule's trial bound.

Oracles: the worst-case trial count against an exhaustive search over accept / refuse sequences; the sets
against set algebra; the logarithmic growth against log2.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from relusv import InvalidInputError
from relusv.pruning_rules import Schedule, accuracy_floor, choose_cut, split_sets, worst_trials


def test_choose_cut_prefers_accuracy_then_the_smaller_singular_value_then_order():
    assert choose_cut([(0.9, 0.1), (0.95, 0.5), (0.95, 0.2)]) == 2
    assert choose_cut([(0.9, 0.3), (0.9, 0.3)]) == 0
    with pytest.raises(InvalidInputError):
        choose_cut([])


def test_floor_is_relative_unless_given_and_never_above_the_start():
    assert accuracy_floor(0.9, 0.01, None) == pytest.approx(0.89)
    assert accuracy_floor(0.9, 0.01, 0.8) == 0.8
    with pytest.raises(InvalidInputError, match="above the unpruned"):
        accuracy_floor(0.9, 0.01, 0.95)
    for bad in (-0.1, 1.5, True, "1"):
        with pytest.raises(InvalidInputError, match="tolerance"):
            accuracy_floor(0.9, bad, None)


def test_split_sets_are_disjoint_seeded_and_cover():
    a = split_sets(100, 3, [1 / 3, 1 / 3, 1 / 3])
    assert [len(s) for s in a] == [33, 33, 34]
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    assert all(np.array_equal(x, y) for x, y in zip(a, split_sets(100, 3, [1 / 3, 1 / 3, 1 / 3])))
    assert not np.array_equal(a[0], split_sets(100, 4, [1 / 3, 1 / 3, 1 / 3])[0])
    with pytest.raises(InvalidInputError):
        split_sets(2, 0, [1 / 3, 1 / 3, 1 / 3])


@pytest.mark.parametrize("fraction", [0.5, 0.25, 0.1])
def test_worst_trials_is_the_exhaustive_worst_case_and_logarithmic(fraction):
    @functools.cache
    def search(rank, refused):
        plan = Schedule({0: rank}, 1, "bisection", fraction)
        plan.refused[0] = refused
        if not plan.open():
            return 0
        t = plan.proposal(0)
        assert refused < t < rank
        return 1 + max(search(t, refused), search(rank, t))

    for r in (2, 3, 7, 64, 100, 257):
        assert worst_trials(r, fraction) == search(r, 0)
    if fraction == 0.5:
        assert all(worst_trials(r, 0.5) == math.ceil(math.log2(r)) for r in range(2, 600))
    per_doubling = [worst_trials(2 ** (k + 1), fraction) - worst_trials(2 ** k, fraction) for k in range(6, 14)]
    assert max(per_doubling) <= math.ceil(1 / -math.log2(1 - fraction)) + 1      # O(log r)


def test_single_schedule_goes_one_rank_at_a_time():
    plan = Schedule({"a": 5}, 2, "single")
    assert plan.trial_bound() == 3 and plan.proposal("a") == 4
    plan.refuse("a", 4)
    assert plan.open() == []
