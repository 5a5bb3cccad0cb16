"""Per-token token buckets: each call spends one, refilled at the token's calls per second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from engine.config import TransportLimits
from gateway.tokens import Identity


class TokenBucket:
    """`burst_calls` calls at once, refilled at `calls_per_s`; the clock is the caller's."""

    __slots__ = ("calls_per_s", "burst_calls", "_available", "_at_s")

    def __init__(self, calls_per_s: float, burst_calls: int, now_s: float) -> None:
        if calls_per_s <= 0 or burst_calls < 1:
            raise ValueError("calls_per_s must be above 0 and burst_calls at least 1")
        self.calls_per_s = calls_per_s
        self.burst_calls = burst_calls
        self._available = float(burst_calls)
        self._at_s = now_s

    def take(self, now_s: float) -> bool:
        """Spend one call if one is available at `now_s`."""
        elapsed_s = now_s - self._at_s
        if elapsed_s > 0:  # a clock that steps back refills nothing
            self._available = min(self.burst_calls,
                                  self._available + elapsed_s * self.calls_per_s)
            self._at_s = now_s
        if self._available >= 1.0:
            self._available -= 1.0
            return True
        return False


class RateLimiter:
    """One bucket per known token (so the table is bounded by the tokens file)."""

    def __init__(self, identities: Iterable[Identity], limits: TransportLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        now_s = clock()
        self._buckets: dict[str, TokenBucket] = {}
        for identity in identities:
            calls_per_s = (identity.calls_per_s if identity.calls_per_s is not None
                           else limits.token_calls_per_s)
            if calls_per_s > 0:  # 0: this token is not limited
                burst = identity.burst_calls or max(limits.token_burst_calls, 1)
                self._buckets[identity.name] = TokenBucket(calls_per_s, burst, now_s)

    def allow(self, identity: Identity) -> bool:
        """Spend one of the token's calls; False when its bucket is empty."""
        bucket = self._buckets.get(identity.name)
        return bucket is None or bucket.take(self._clock())

    def limit_of(self, identity: Identity) -> str:
        """The token's limit, as a refusal names it."""
        bucket = self._buckets.get(identity.name)
        return "none" if bucket is None else (
            f"{bucket.calls_per_s:g} calls/s, bursts of {bucket.burst_calls}")
