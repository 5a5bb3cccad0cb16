"""The ERP simulator's misbehaviour: a token-bucket rate limit, outage windows, seeded dice."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass


class TokenBucket:
    """`rate_rps` requests a second on average, up to `burst` at once; a rate of 0 is no limit.

    The clock is passed in (`now_s`, monotonic seconds), so tests step it without sleeping.
    """

    def __init__(self, rate_rps: float, burst: int, now_s: float) -> None:
        self.rate_rps = rate_rps
        self.burst = burst
        self._tokens = float(burst)
        self._updated_s = now_s

    def take(self, now_s: float) -> float:
        """Take a token: 0.0 when granted, else the seconds until one is due."""
        if self.rate_rps <= 0:
            return 0.0
        self._refill(now_s)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate_rps

    def _refill(self, now_s: float) -> None:
        elapsed_s = max(0.0, now_s - self._updated_s)  # a clock that steps back adds nothing
        self._tokens = min(float(self.burst), self._tokens + elapsed_s * self.rate_rps)
        self._updated_s = now_s


def retry_after_s(wait_s: float) -> int:
    """The Retry-After header's whole seconds: rounded up, and never 0 (which means now)."""
    return max(1, math.ceil(wait_s))


@dataclass(frozen=True)
class OutageWindow:
    """Down from `start_s` seconds after the simulator started, for `duration_s` seconds."""

    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def parse_outage(text: str) -> OutageWindow:
    """`START_S:DURATION_S`, as `--outage` takes it; ValueError naming the option."""
    try:
        start_text, duration_text = text.split(":")
        window = OutageWindow(float(start_text), float(duration_text))
    except ValueError:
        raise ValueError(f"--outage: expected START_S:DURATION_S, not {text!r}") from None
    if not (math.isfinite(window.start_s) and math.isfinite(window.duration_s)
            and window.start_s >= 0 and window.duration_s > 0):
        raise ValueError(f"--outage: START_S must be at least 0 and DURATION_S above 0, "
                         f"not {text!r}")
    return window


class OutageSchedule:
    """Scheduled windows (relative to `started_at_s`) plus outages started by hand."""

    def __init__(self, windows: Iterable[OutageWindow], started_at_s: float) -> None:
        self.windows = tuple(sorted(windows, key=lambda window: window.start_s))
        self._started_at_s = started_at_s
        self._manual_until_s = started_at_s
        # An outage ended by hand cuts short the scheduled window under way at that moment.
        self._cleared_at_s = started_at_s

    def remaining_s(self, now_s: float) -> float:
        """Seconds until the outage under way ends; 0.0 when the ERP is up."""
        remaining_s = max(0.0, self._manual_until_s - now_s)
        since_start_s = now_s - self._started_at_s
        cleared_s = self._cleared_at_s - self._started_at_s
        for window in self.windows:
            if window.start_s >= cleared_s and window.start_s <= since_start_s < window.end_s:
                remaining_s = max(remaining_s, window.end_s - since_start_s)
        return remaining_s

    def start_now(self, now_s: float, seconds: float) -> None:
        """Down for `seconds` from now; 0 ends the outage under way, scheduled or not."""
        self._manual_until_s = now_s + seconds
        if seconds <= 0:
            self._cleared_at_s = now_s


class FaultDice:
    """Seeded draws for latency, injected errors and asynchronous acceptance.

    Each kind has its own stream, so turning one fault on does not shift the others' draws.
    """

    def __init__(self, seed: int) -> None:
        self._latency = random.Random(f"{seed}:latency")
        self._errors = random.Random(f"{seed}:errors")
        self._acceptance = random.Random(f"{seed}:acceptance")

    def latency_s(self, mean_ms: float, jitter_ms: float) -> float:
        """Uniform within mean +- jitter, never below 0."""
        if mean_ms <= 0 and jitter_ms <= 0:
            return 0.0
        return max(0.0, self._latency.uniform(mean_ms - jitter_ms, mean_ms + jitter_ms)) / 1000

    def fails(self, error_rate: float) -> bool:
        return error_rate > 0 and self._errors.random() < error_rate

    def accepts_async(self, ratio: float) -> bool:
        return ratio > 0 and self._acceptance.random() < ratio
