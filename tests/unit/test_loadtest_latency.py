"""Latency percentiles come from an HDR histogram, at three significant figures."""

from __future__ import annotations

import pytest

from loadtest.latency import HIGHEST_US, LatencyHistogram


def test_summary_reads_percentiles_from_the_histogram():
    """A thousand latencies of 1..1000 ms: p50 about 500 ms, p99 about 990 ms."""
    histogram = LatencyHistogram()
    for ms in range(1, 1001):
        histogram.record_s(ms / 1000)
    summary = histogram.summary()
    assert summary["count"] == 1000
    assert summary["p50_ms"] == pytest.approx(500, rel=0.002)
    assert summary["p99_ms"] == pytest.approx(990, rel=0.002)
    assert summary["max_ms"] == pytest.approx(1000, rel=0.002)
    assert summary["mean_ms"] == pytest.approx(500.5, rel=0.002)


def test_an_empty_histogram_summarises_to_zeros():
    """Nothing recorded: zero count and zero percentiles, not an error."""
    assert LatencyHistogram().summary()["p99_ms"] == 0.0


def test_values_outside_the_range_are_clamped():
    """Zero and an absurdly long call are recorded at the range's ends."""
    histogram = LatencyHistogram()
    histogram.record_s(0.0)
    histogram.record_s(10_000.0)
    assert histogram.count == 2
    assert histogram.percentile_ms(100) == pytest.approx(HIGHEST_US / 1000, rel=0.001)


def test_add_merges_counts_and_curve_rises():
    """Two histograms merge; the plotted curve never falls as the percentile rises."""
    first, second = LatencyHistogram(), LatencyHistogram()
    first.record_s(0.001)
    second.record_s(0.1)
    first.add(second)
    assert first.count == 2
    values = [ms for _, ms in first.curve()]
    assert values == sorted(values)
