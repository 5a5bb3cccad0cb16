"""Quantiles interpolated inside histogram buckets as Prometheus does, and windowed differences."""

from __future__ import annotations

import pytest

from gateway.histogram_math import difference, quantile

BOUNDS = [1.0, 2.0, 4.0, 8.0]


def test_quantile_interpolates_inside_the_bucket_the_rank_falls_in():
    """Ten observations in (1, 2] and ten in (2, 4]: the median is 2, p75 halfway to 4."""
    cumulative = [0, 10, 20, 20, 20]
    assert quantile(0.5, BOUNDS, cumulative) == pytest.approx(2.0)
    assert quantile(0.75, BOUNDS, cumulative) == pytest.approx(3.0)
    assert quantile(0.99, BOUNDS, cumulative) == pytest.approx(2.0 + 2.0 * 9.8 / 10)


def test_quantile_of_the_first_bucket_starts_from_zero():
    """Every observation at or below 1: the median is read between 0 and 1."""
    assert quantile(0.5, BOUNDS, [4, 4, 4, 4, 4]) == pytest.approx(0.5)


def test_quantile_in_the_infinite_bucket_answers_the_highest_finite_bound():
    """Nothing is known above the last bound, so a rank past it answers that bound."""
    assert quantile(0.99, BOUNDS, [0, 0, 0, 1, 100]) == 8.0


def test_quantile_of_an_empty_histogram_is_none():
    """No observation, no quantile (never a made-up 0)."""
    assert quantile(0.5, BOUNDS, [0, 0, 0, 0, 0]) is None


def test_quantile_without_interpolation_answers_the_bucket_bound():
    """Batch sizes of exactly 1 read as 'at most 1', not as 0.5."""
    assert quantile(0.5, BOUNDS, [7, 7, 7, 7, 7], interpolate=False) == 1.0
    assert quantile(0.99, BOUNDS, [0, 5, 9, 10, 10], interpolate=False) == 8.0


def test_quantile_refuses_mismatched_counts_and_bad_q():
    """Counts must be one per bound plus the total, and q within 0..1."""
    with pytest.raises(ValueError):
        quantile(0.5, BOUNDS, [1, 2, 3])
    with pytest.raises(ValueError):
        quantile(1.5, BOUNDS, [0, 0, 0, 0, 1])


def test_difference_subtracts_an_older_reading():
    """What was observed between two readings of cumulative counts."""
    assert difference([5, 9, 12], [1, 4, 4]) == [4, 5, 8]


def test_difference_after_a_reset_keeps_the_newer_reading():
    """A restarted process starts its counts again: the newer reading is all that is known."""
    assert difference([1, 2, 2], [5, 9, 12]) == [1, 2, 2]
    assert difference([1, 2, 2], None) == [1, 2, 2]
