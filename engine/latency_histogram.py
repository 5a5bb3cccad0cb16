"""A fixed-bucket latency histogram cheap enough for a writer thread, read as plain numbers."""

from __future__ import annotations

import bisect

# Upper bounds in ms: a Redis round trip on one host is well under 1 ms, a slow disk or a
# loaded Redis reaches tens, and past DurabilityConfig.write_timeout_s (5 s) it is a failure.
BUCKETS_MS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
              2500.0, 5000.0)


class LatencyHistogram:
    """Counts per bucket (the last one unbounded), their sum and count, since it was made.

    One thread observes, another reads: a reader may see one observation half counted
    (in `counts` but not yet in `sum_ms`), which a dashboard can bear.
    """

    __slots__ = ("counts", "sum_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_MS) + 1)
        self.sum_ms = 0.0

    def observe(self, latency_ms: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_MS, latency_ms)] += 1
        self.sum_ms += latency_ms

    def snapshot(self) -> dict:
        """{"buckets_ms", "counts" (per bucket, not cumulative, last one +Inf), "sum_ms"}."""
        return {"buckets_ms": list(BUCKETS_MS), "counts": list(self.counts),
                "sum_ms": round(self.sum_ms, 3)}
