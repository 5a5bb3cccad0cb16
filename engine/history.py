"""A bounded ring of on-hand changes per row, so a late cycle count keeps what came after it."""

from __future__ import annotations

import numpy as np

from engine.arrays import grown

_NO_ENTRY = -1
NEVER_MS = -(2**62)


class MovementHistory:
    """Entries chain backwards per row; the ring forgets the oldest once it is full."""

    def __init__(self, capacity: int, rows_capacity: int) -> None:
        self.capacity = capacity
        self.entries_total = 0  # entries ever recorded; entry n lives in slot n % capacity
        # applied_at of the newest entry the ring has forgotten: counts older than this
        # (less the clock skew) cannot be re-based exactly any more.
        self.forgotten_applied_at_ms = NEVER_MS
        self.row = np.zeros(capacity, dtype=np.int64)
        self.occurred_at_ms = np.zeros(capacity, dtype=np.int64)
        self.applied_at_ms = np.zeros(capacity, dtype=np.int64)
        self.delta = np.zeros(capacity, dtype=np.int64)
        self.previous = np.full(capacity, _NO_ENTRY, dtype=np.int64)
        self.is_count = np.zeros(capacity, dtype=np.bool_)
        self.head = np.full(rows_capacity, _NO_ENTRY, dtype=np.int64)
        # Per row, the latest instant a count was as of: on-hand changes that occurred
        # by then are part of the count, however late they arrive.
        self.counted_as_of_ms = np.full(rows_capacity, NEVER_MS, dtype=np.int64)

    def ensure_rows(self, rows_capacity: int) -> None:
        if rows_capacity > len(self.head):
            self.head = grown(self.head, rows_capacity, _NO_ENTRY)
            self.counted_as_of_ms = grown(self.counted_as_of_ms, rows_capacity, NEVER_MS)

    def record(self, row: int, occurred_at_ms: int, applied_at_ms: int, delta: int,
               is_count: bool = False) -> None:
        entry = self.entries_total
        slot = entry % self.capacity
        if entry >= self.capacity:
            self.forgotten_applied_at_ms = max(self.forgotten_applied_at_ms,
                                               int(self.applied_at_ms[slot]))
        self.row[slot] = row
        self.occurred_at_ms[slot] = occurred_at_ms
        self.applied_at_ms[slot] = applied_at_ms
        self.delta[slot] = delta
        self.is_count[slot] = is_count
        self.previous[slot] = self.head[row]
        self.head[row] = entry
        self.entries_total = entry + 1
        if is_count and occurred_at_ms > self.counted_as_of_ms[row]:
            self.counted_as_of_ms[row] = occurred_at_ms

    def changes_after(self, row: int, as_of_ms: int, clock_skew_ms: int) -> int | None:
        """Net on-hand change of movements that occurred after `as_of_ms`.

        Returns None when the ring no longer reaches back far enough to know, and raises
        `Superseded` when a count as of a later instant was already applied.
        """
        # Anything applied before this instant occurred before `as_of_ms`, skew allowing.
        horizon_ms = as_of_ms - clock_skew_ms
        oldest_kept = self.entries_total - self.capacity
        total = 0
        entry = int(self.head[row])
        while entry != _NO_ENTRY:
            if entry < oldest_kept:
                return total if self.forgotten_applied_at_ms < horizon_ms else None
            slot = entry % self.capacity
            if self.applied_at_ms[slot] < horizon_ms:
                break
            if self.occurred_at_ms[slot] > as_of_ms:
                if self.is_count[slot]:
                    raise Superseded(int(self.occurred_at_ms[slot]))
                total += int(self.delta[slot])
            entry = int(self.previous[slot])
        return total


class Superseded(Exception):
    """A count as of a later instant has already been applied."""

    def __init__(self, later_count_at_ms: int) -> None:
        super().__init__(later_count_at_ms)
        self.later_count_at_ms = later_count_at_ms
