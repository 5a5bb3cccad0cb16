"""Waiting on a condition with a deadline, and a clock a test sets, for threaded unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT_S = 5.0


def wait_until(condition: Callable[[], object], timeout_s: float = WAIT_S) -> bool:
    """Whether `condition` came true before the deadline (polled, never a bare sleep)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


class Clock:
    """Milliseconds that move only when a test moves them."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms
