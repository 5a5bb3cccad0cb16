"""Latency recorded in an HDR histogram (the `hdrhistogram` package) and summarised from it."""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
# Two minutes: a call retried through a fault for longer is recorded at this ceiling.
HIGHEST_US = 120_000_000
SIGNIFICANT_FIGURES = 3
# The percentiles a latency-distribution plot draws, up to 99.99.
CURVE_PERCENTILES = (0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0)


class LatencyHistogram:
    """Latencies in microseconds at three significant figures, read back in milliseconds."""

    def __init__(self) -> None:
        self._histogram = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)

    @property
    def count(self) -> int:
        return self._histogram.get_total_count()

    def record_s(self, seconds: float) -> None:
        """Record one latency; values outside the trackable range are clamped to it."""
        self._histogram.record_value(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6))))

    def add(self, other: LatencyHistogram) -> None:
        """Merge another histogram's counts into this one."""
        self._histogram.add(other._histogram)

    def percentile_ms(self, percentile: float) -> float:
        """The value at `percentile` (0..100) in ms; 0 when nothing was recorded."""
        if not self.count:
            return 0.0
        return self._histogram.get_value_at_percentile(percentile) / 1000

    def summary(self) -> dict[str, float | int]:
        """Count, mean and the usual percentiles in milliseconds."""
        empty = not self.count
        return {"count": self.count,
                "mean_ms": 0.0 if empty else round(self._histogram.get_mean_value() / 1000, 3),
                "p50_ms": self.percentile_ms(50), "p90_ms": self.percentile_ms(90),
                "p99_ms": self.percentile_ms(99), "p999_ms": self.percentile_ms(99.9),
                "max_ms": 0.0 if empty else self._histogram.get_max_value() / 1000}

    def curve(self) -> list[tuple[float, float]]:
        """(percentile, ms) pairs for a latency-distribution plot."""
        return [(percentile, self.percentile_ms(percentile)) for percentile in CURVE_PERCENTILES]
