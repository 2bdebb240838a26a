"""Properties of the seed statistics and the paired tests (tinysnn_core.stats)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinysnn_core.errors import InputError
from tinysnn_core.stats import (accuracy_bounds, accuracy_summary, mcnemar_exact, mean_ci,
                                pack_correct, paired_difference, unpack_correct)

accs = st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=12)
bools = st.lists(st.booleans(), min_size=1, max_size=300)


@settings(deadline=None)          # the first call imports scipy
@given(accs)
def test_ci_contains_the_mean(values):
    mean, (lo, hi) = mean_ci(values)
    assert lo <= mean + 1e-12 and mean <= hi + 1e-12
    assert mean == pytest.approx(np.mean(values))


@settings(deadline=None)
@given(accs)
def test_ci_shrinks_with_more_samples_of_the_same_spread(values):
    _, (lo, hi) = mean_ci(values)
    _, (lo2, hi2) = mean_ci(values * 2)       # every value twice: same mean, more samples
    assert hi2 - lo2 <= hi - lo + 1e-12
    if np.std(values) > 1e-6:
        assert hi2 - lo2 < hi - lo


def test_ci_is_the_student_t_interval():
    # t(0.975, 1 dof) = 12.7062: half-width 12.7062 * sd / sqrt(2), sd = 0.1 / sqrt(2)
    mean, (lo, hi) = mean_ci([0.8, 0.9])
    assert mean == pytest.approx(0.85)
    assert hi - mean == pytest.approx(12.7062 * 0.05, rel=1e-4)
    assert mean_ci([0.5]) == (0.5, None)
    assert mean_ci([0.7, 0.7, 0.7])[1] == pytest.approx((0.7, 0.7))


def test_summary_clips_the_interval_to_accuracies():
    out = accuracy_summary([0.99, 1.0, 0.9])
    assert 0 <= out["accuracy_ci"][0] <= out["accuracy"] <= out["accuracy_ci"][1] == 1.0
    assert out["accuracy_seeds"] == [0.99, 1.0, 0.9] and "accuracy_ci" not in accuracy_summary([1])


@pytest.mark.parametrize("bad", [[], [float("nan"), 1.0], [[0.5, 0.5]]])
def test_ci_of_nothing_is_refused(bad):
    with pytest.raises(InputError):
        mean_ci(bad)


@given(bools)
def test_bitmap_round_trip(values):
    text = pack_correct(values)
    assert len(text) == 2 * ((len(values) + 7) // 8)
    assert unpack_correct(text, len(values)).tolist() == values


@given(bools, st.integers(1, 8))
def test_a_bitmap_of_another_length_is_refused(values, extra):
    text = pack_correct(values)
    with pytest.raises(InputError, match="hex digits"):
        unpack_correct(text, len(values) + 8 * extra)
    with pytest.raises(InputError):
        unpack_correct(text[:-2], len(values))


@pytest.mark.parametrize("text, n, message", [
    ("zz", 8, "not hex"), ("ff", 7, "past its 7 samples"), (12, 8, "not a hex string"),
    ("ff", 0, "not an integer"), ("ff", 10 ** 12, "not an integer"), ("ff", True, "integer")])
def test_damaged_bitmaps(text, n, message):
    with pytest.raises(InputError, match=message):
        unpack_correct(text, n)


@given(bools, st.data())
def test_mcnemar_p_is_symmetric_and_a_probability(a, data):
    b = data.draw(st.lists(st.booleans(), min_size=len(a), max_size=len(a)))
    ab, ba = mcnemar_exact([(a, b)]), mcnemar_exact([(b, a)])
    assert 0 <= ab.p <= 1 and ab.p == pytest.approx(ba.p)
    assert (ab.only_a, ab.only_b) == (ba.only_b, ba.only_a)
    assert mcnemar_exact([(a, a)]).p == 1.0


def test_mcnemar_exact_values_and_pooling():
    a = np.array([True] * 6 + [False] * 4)
    b = np.array([False] * 6 + [False] * 4)
    assert mcnemar_exact([(a, b)]).p == pytest.approx(2 / 64)       # 6 vs 0 discordant
    # split into two seeds of 3 + 3 vs 0: pooled, the same test
    pooled = mcnemar_exact([(a[:3], b[:3]), (a[3:], b[3:])])
    assert (pooled.only_a, pooled.only_b) == (6, 0)
    assert pooled.p == pytest.approx(2 / 64)
    assert mcnemar_exact([(a[:5], b[:5])]).p == pytest.approx(2 / 32)
    with pytest.raises(InputError, match="do not match"):
        mcnemar_exact([(a, b[:5])])


@settings(max_examples=30, deadline=None)
@given(bools, st.data())
def test_paired_bounds_bracket_the_difference(a, data):
    b = data.draw(st.lists(st.booleans(), min_size=len(a), max_size=len(a)))
    d = paired_difference([(a, b)], resamples=2000)
    assert d.lower <= d.mean <= d.upper
    assert d.interval[0] <= d.lower + 1e-12 and d.upper <= d.interval[1] + 1e-12
    assert d.mean == pytest.approx(np.mean(a) - np.mean(b))
    same = paired_difference([(a, a)], resamples=500)
    assert same.mean == same.lower == same.upper == 0.0


def test_a_three_point_drop_is_not_within_one_point():
    rng = np.random.default_rng(1)
    base = rng.random(1000) < 0.88
    cand = base.copy()
    cand[np.flatnonzero(base)[:30]] = False          # 30 of 1,000 samples lost: -3 points
    d = paired_difference([(cand, base)])
    assert d.mean == pytest.approx(-0.03)
    assert -0.045 < d.lower < -0.02                  # sure it is more than 1 point
    assert d.mcnemar.only_b == 30 and d.mcnemar.p < 1e-8
    # the same drop spread over five seeds: the bound tightens around -3 points
    five = paired_difference([(cand, base)] * 5)
    assert d.lower < five.lower < -0.025
    assert paired_difference([(cand, base)]).lower == d.lower       # deterministic


def test_accuracy_bounds():
    v = np.array([True] * 880 + [False] * 120)
    mean, lo, hi = accuracy_bounds([v])
    assert mean == pytest.approx(0.88)
    # binomial standard error 1.03 points: the one-sided 95% bound about 1.7 points below
    assert 0.86 < lo < 0.87 and 0.89 < hi < 0.90
    with pytest.raises(InputError):
        accuracy_bounds([])
    with pytest.raises(InputError, match="confidence"):
        accuracy_bounds([v], confidence=1.5)
