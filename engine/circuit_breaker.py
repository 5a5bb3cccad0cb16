"""A circuit breaker for the ERP: closed, open after repeated failures, half-open to probe.

Hand-written rather than taken from a library: the sync job needs the clock passed in (its
tests step time instead of sleeping), exactly one probe in flight while half-open (several
batches are in flight at once), and a wait for the next allowed call. circuitbreaker 2.1
lets every caller through when half-open and its `call_async` does not refuse while open;
pybreaker's async support needs tornado.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import IntEnum


class BreakerState(IntEnum):
    """Numbered as exported in metrics: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Counts failures in a row; while open no call goes out, then one probe decides."""

    def __init__(self, failures_max: int, recovery_s: float,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        if failures_max < 1 or recovery_s <= 0:
            raise ValueError("failures_max must be at least 1 and recovery_s above 0")
        self._failures_max, self._recovery_s, self._clock_s = failures_max, recovery_s, clock_s
        self._failures = 0
        self._opened_at_s: float | None = None
        self._open_for_s = recovery_s
        self._probing = False
        self.opened_total = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at_s is None:
            return BreakerState.CLOSED
        if self._probing or self._clock_s() - self._opened_at_s >= self._open_for_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def try_acquire(self) -> float:
        """0 if a call may go now (taking the probe slot when half-open), else seconds to wait."""
        if self._opened_at_s is None:
            return 0.0
        if self._probing:
            return min(self._recovery_s, 0.1)  # the probe's answer decides soon
        remaining_s = self._opened_at_s + self._open_for_s - self._clock_s()
        if remaining_s > 0:
            return remaining_s
        self._probing = True
        return 0.0

    async def acquire(self) -> None:
        """Wait until a call may go."""
        while (wait_s := self.try_acquire()) > 0:
            await asyncio.sleep(wait_s)

    def succeeded(self) -> None:
        self._failures, self._opened_at_s, self._probing = 0, None, False

    def failed(self) -> None:
        """A failed call; a failed probe, or one failure too many, opens the breaker."""
        self._failures += 1
        if self._probing or (self._opened_at_s is None
                             and self._failures >= self._failures_max):
            self.trip(self._recovery_s)

    def trip(self, open_for_s: float) -> None:
        """Open now for at least `open_for_s`: the ERP said it is down until then."""
        if self._opened_at_s is None:
            self.opened_total += 1
        self._opened_at_s, self._probing = self._clock_s(), False
        self._open_for_s = max(self._recovery_s, open_for_s)
