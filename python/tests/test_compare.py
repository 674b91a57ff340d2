"""The calibrated two-set comparison (MATH.md section 11): ``relusv.analysis.compare``.

Oracles: the library itself for the directions and the widths (``relusv.gmw``
with ``return_details``, float64), a naive permutation test that recomputes
every relabelled statistic with ``relusv.gmw``, Holm's definition evaluated by
brute force over the step-down rule, and binomial bounds for the null rate.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import relusv
from relusv.analysis import (
    adjust,
    compare,
    design,
    gaussian_directions,
    gmw_functional,
    holm,
    maximum_functional,
)
from relusv.errors import InvalidInputError
from scipy.stats import binom


@pytest.mark.parametrize("dimension, samples, seed", [(7, 30, 4), (8, 13, 0), (1, 5, 2**40 + 3), (33, 64, 11)])
def test_directions_are_those_of_relusv_gmw(dimension, samples, seed):
    x = np.random.default_rng(seed % 97).normal(size=(40, dimension))
    p = x @ gaussian_directions(dimension, samples, seed).T
    details = relusv.gmw(x, samples=samples, seed=seed, trim=0, return_details=True)
    np.testing.assert_allclose(p.max(axis=0) - p.min(axis=0), details.sample_widths, rtol=1e-12)


def test_directions_reject_bad_sizes():
    with pytest.raises(InvalidInputError):
        gaussian_directions(0, 3, 0)
    with pytest.raises(InvalidInputError):
        gaussian_directions(3, 3, -1)
    with pytest.raises(InvalidInputError):
        gaussian_directions(1 << 20, 1 << 10, 0)


def _null_points(rng, n, dimension=6):
    """Anisotropic Gaussian points, one population for both groups."""
    return rng.normal(size=(n, dimension)) * np.linspace(0.5, 2.0, dimension)


@pytest.mark.parametrize("trim", [0.0, 0.1])
def test_fast_path_equals_relusv_gmw_on_every_set(trim):
    rng = np.random.default_rng(1)
    correct = rng.random(160) < 0.7
    x = _null_points(rng, 160)
    plan = design(correct, repeats=3, permutations=20, bootstrap=10, seed=9)
    c = compare(plan, gmw_functional(x[plan.pool], samples=40, trim=trim, seed=9))
    for r in range(3):
        for k, values in enumerate((c.correct_values, c.incorrect_values)):
            want = relusv.gmw(x[plan.pool[plan.observed[r, k]]], samples=40, seed=9, trim=trim)
            assert values[r] == pytest.approx(want, rel=1e-12)


def test_permutation_p_value_against_a_naive_recomputation():
    rng = np.random.default_rng(2)
    correct = rng.random(90) < 0.75
    x = _null_points(rng, 90)
    plan = design(correct, repeats=2, permutations=25, bootstrap=5, seed=4)
    c = compare(plan, gmw_functional(x[plan.pool], samples=20, trim=0.1, seed=4))
    z = x[plan.pool]

    def statistic(sets):
        return np.mean([relusv.gmw(z[sets[r, 0]], samples=20, seed=4) - relusv.gmw(z[sets[r, 1]], samples=20, seed=4)
                        for r in range(sets.shape[0])])

    d = statistic(plan.observed)
    d_star = np.array([statistic(plan.permuted[b]) for b in range(25)])
    assert c.difference == pytest.approx(d, rel=1e-12)
    assert c.p_value == (1 + np.sum(np.abs(d_star) >= abs(d) - 1e-9 * abs(d))) / 26
    # Every relabelling splits the pool into groups of the pools' sizes, each set inside its group.
    for b in range(25):
        for r in range(2):
            assert len(np.intersect1d(plan.permuted[b, r, 0], plan.permuted[b, r, 1])) == 0


def test_design_is_seeded_and_capped():
    correct = np.arange(1000) % 5 != 0          # 800 correct, 200 incorrect
    a = design(correct, repeats=3, permutations=30, bootstrap=10, max_group_size=150, seed=3)
    b = design(correct, repeats=3, permutations=30, bootstrap=10, max_group_size=150, seed=3)
    other = design(correct, repeats=3, permutations=30, bootstrap=10, max_group_size=150, seed=4)
    for name in ("pool", "observed", "permuted", "resampled"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.pool, other.pool)
    assert a.size == 150 and a.pool.size == 300 and a.labels.sum() == 150
    assert correct[a.pool[a.labels]].all() and not correct[a.pool[~a.labels]].any()
    for r in range(3):   # pools of exactly the compared size: used whole in every repeat
        assert np.array_equal(np.sort(a.observed[r, 1]), np.flatnonzero(~a.labels))
    with pytest.raises(InvalidInputError, match="repeats"):
        design(correct, repeats=0)
    with pytest.raises(InvalidInputError, match="alpha"):
        design(correct, alpha=1.5)
    assert design(np.ones(10, bool)).reason.startswith("all 10 probe points are classified correctly")


def test_holm_against_the_step_down_rule():
    rng = np.random.default_rng(5)
    for _ in range(50):
        p = rng.random(7) ** 3
        adjusted = holm(p)
        order = np.argsort(p)
        for alpha in (0.01, 0.05, 0.2):
            # Step down: reject the sorted hypotheses while p_(j) <= alpha / (m - j), j from 0.
            rejected = np.zeros(7, bool)
            for j, i in enumerate(order):
                if p[i] > alpha / (7 - j):
                    break
                rejected[i] = True
            assert np.array_equal(adjusted <= alpha, rejected)
    assert np.isnan(holm([0.1, np.nan])[1]) and holm([0.1, np.nan])[0] == 0.1


def _family_run(seed, scale=1.0, sites=2):
    """One analysis of ``sites`` sites on labels independent of the points (``scale`` != 1 plants an effect:
    the correct points scaled). Returns the verdicts after Holm."""
    rng = np.random.default_rng([seed, 7])
    correct = rng.random(150) < 0.8
    plan = design(correct, repeats=3, permutations=199, bootstrap=20, seed=seed)
    comparisons = []
    for s in range(sites):
        x = _null_points(rng, 150, dimension=5 + s) * np.where(correct, scale, 1.0)[:, None]
        comparisons.append(compare(plan, gmw_functional(x[plan.pool], samples=30, trim=0.1, seed=seed)))
    adjust(comparisons, plan.alpha)
    return [c.verdict for c in comparisons]


def test_null_splits_give_no_difference_shown_at_the_nominal_rate():
    # 40 null analyses of two sites each; the family-wise level is 0.05. With a calibrated test the number
    # of analyses with any verdict is Binomial(40, p) with p <= 0.05, so more than 6 of them happen with
    # probability binom.sf(6, 40, 0.05) < 0.5 % (the seeds are fixed: the outcome is deterministic).
    assert binom.sf(6, 40, 0.05) < 0.005
    false = sum(any(v != "no difference shown" for v in _family_run(seed)) for seed in range(40))
    assert false <= 6


def test_a_planted_effect_is_detected():
    # Correct points scaled by 1.5: the GMW is 1.5 times larger (w(lK) = l w(K)); detected at both sites.
    for seed in range(3):
        assert _family_run(100 + seed, scale=1.5) == ["correct larger", "correct larger"]
        assert _family_run(200 + seed, scale=0.6) == ["incorrect larger", "incorrect larger"]


def test_effect_interval_covers_the_planted_ratio():
    # Scaling the correct points by l multiplies their widths by l, so the population effect is
    # 2 (l - 1) / (l + 1); the 95 % interval (permutation spread) must contain it in most of 10 runs:
    # with coverage 0.95, 7 or fewer happen with probability binom.cdf(7, 10, 0.95) < 1.2 %.
    scale = 1.3
    truth = 2 * (scale - 1) / (scale + 1)
    covered = 0
    for seed in range(10):
        rng = np.random.default_rng([seed, 11])
        correct = rng.random(200) < 0.7
        plan = design(correct, repeats=4, permutations=200, seed=seed)
        x = _null_points(rng, 200) * np.where(correct, scale, 1.0)[:, None]
        c = compare(plan, gmw_functional(x[plan.pool], samples=50, trim=0.1, seed=seed))
        covered += c.effect_low <= truth <= c.effect_high
    assert binom.cdf(7, 10, 0.95) < 0.012
    assert covered >= 8


def test_maximum_functional_is_the_largest_value_of_each_set():
    rng = np.random.default_rng(3)
    correct = rng.random(60) < 0.6
    v = rng.random(60)
    plan = design(correct, repeats=2, permutations=10, bootstrap=5, seed=1)
    c = compare(plan, maximum_functional(v[plan.pool]))
    for r in range(2):
        assert c.correct_values[r] == v[plan.pool[plan.observed[r, 0]]].max()
        assert c.incorrect_values[r] == v[plan.pool[plan.observed[r, 1]]].max()
    assert math.isfinite(c.p_value) and 1 / 11 <= c.p_value <= 1


def test_a_family_too_large_for_the_permutations_is_named():
    from relusv.analysis.compare import resolution_note

    assert resolution_note(500, 11, 0.05) == ""                 # 1/501 < 0.05/11
    note = resolution_note(100, 11, 0.05)                        # 1/101 >= 0.05/11: no verdict possible
    assert "no verdict is possible" in note and "at least 220 permutations" in note


@pytest.mark.parametrize("family", [1, 11, 26, 58, 400])
def test_the_permutation_count_from_the_family_makes_a_verdict_attainable(family):
    from relusv.analysis.compare import DEFAULT_PERMUTATIONS, permutations_for, resolution_note

    count = permutations_for(family, 0.05)
    assert count >= DEFAULT_PERMUTATIONS
    # Holm's smallest adjusted p-value, family / (count + 1), is at most alpha / 2: a verdict is attainable.
    assert family / (count + 1) <= 0.05 / 2
    assert resolution_note(count, family, 0.05) == ""
    assert family < 26 or resolution_note(DEFAULT_PERMUTATIONS, family, 0.05) != ""   # 500 alone would not do
    with pytest.raises(InvalidInputError):
        permutations_for(-1)


def _staged_plan(seed, scale):
    from relusv.analysis.compare import for_family

    rng = np.random.default_rng([seed, 5])
    correct = rng.random(160) < 0.6
    x = _null_points(rng, 160) * np.where(correct, scale, 1.0)[:, None]
    plan = for_family(design(correct, repeats=2, permutations=None, seed=seed), 40)   # 1599 relabellings
    return plan, gmw_functional(x[plan.pool], samples=30, trim=0.1, seed=seed)


def _naive_p(plan, functional, stop):
    """The staged p-value from the definition: all relabellings, or the first stage alone."""
    first = plan.settings["first_stage"]
    observed = np.array([[functional.evaluate(plan.observed[r, k][None])[0] for k in range(2)]
                         for r in range(plan.repeats)])
    d = (observed[:, 0] - observed[:, 1]).mean()
    d_star = np.array([np.mean([functional.evaluate(plan.permuted[b, r, 0][None])[0] -
                                functional.evaluate(plan.permuted[b, r, 1][None])[0] for r in range(plan.repeats)])
                       for b in range(plan.permuted.shape[0])])
    hits = np.abs(d_star) >= abs(d) - 1e-9 * abs(d)
    if hits[:first].sum() >= stop:
        return (1 + hits[:first].sum()) / (first + 1), first
    return (1 + hits.sum()) / (hits.size + 1), hits.size


@pytest.mark.parametrize("seed, scale", [(0, 1.0), (1, 1.0), (2, 1.6)])
def test_staged_relabellings_against_the_definition(seed, scale):
    from relusv.analysis.compare import stop_count

    plan, functional = _staged_plan(seed, scale)
    assert plan.permuted.shape[0] == 1599 and plan.settings["first_stage"] == 500
    stop = stop_count(500, 0.05)
    assert (1 + stop) / 501 >= 0.05 > stop / 501       # a comparison stopped early has p >= alpha
    c = compare(plan, functional)
    p, used = _naive_p(plan, functional, stop)
    assert c.p_value == pytest.approx(p, rel=1e-12) and c.permutations == used
    if scale > 1:                                          # a planted effect runs to the end, below alpha / 40
        assert used == 1599 and c.p_value < 0.05 / 40


def test_analyze_draws_enough_permutations_for_its_family():
    # A deep MLP: 16 layers, 32 GMW comparisons (relu_bounds=False), more than 500 relabellings can serve
    # (1/501 >= 0.05/32). The correct points are planted 3 times wider than the incorrect ones, so their
    # widths differ at every layer: with the count from the family there are verdicts, with 500 none.
    import warnings

    import torch
    from relusv.analysis.compare import permutations_for
    from relusv.torch import analyze
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(15) for m in (nn.Linear(8, 8), nn.ReLU())], nn.Linear(8, 3)).eval()
    x = torch.randn(80, 8)
    x[:40] *= 3.0
    with torch.no_grad():
        y = model(x).argmax(1)
    y[40:] = (y[40:] + 1) % 3                            # the narrow half misclassified
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no "no verdict is possible" warning with the defaults
        table = analyze(model, x, y, relu_bounds=False, repeats=2, samples=30, progress=False)
    family = table.attrs["family"]
    assert family == 32 and table.attrs["design"]["permutations"] == permutations_for(family)
    assert (table["gmw_verdict"] == "correct larger").any()
    with pytest.warns(UserWarning, match="no verdict is possible"):
        fixed = analyze(model, x, y, relu_bounds=False, repeats=2, samples=30, permutations=500, progress=False)
    assert (fixed["gmw_verdict"] == "no difference shown").all()


def test_spread_of_huge_values_does_not_overflow():
    """The sample standard deviation of values near 1e300 (whose squares overflow) is the scaled one's, and
    equals NumPy's on ordinary values."""
    from relusv.analysis.compare import spread

    base = np.array([1.0, 1.1, 0.9, 1.05])
    for scale in (1e300, 1e-300, 1.0, 3.0):
        assert spread(base * scale) == pytest.approx(scale * base.std(ddof=1), rel=1e-12)
    assert spread([5.0]) == 0.0
    assert spread([0.0, 0.0]) == 0.0
