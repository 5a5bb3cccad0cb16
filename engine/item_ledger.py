"""The latest changes to any SKU-location, kept in a ring, so an answer can say what made it."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

_NO_ROW = -1


class LedgerLine(NamedTuple):
    """One change behind a figure: what it was, by which key, from where, at which seq."""

    seq: int
    at_unix_ms: int
    what: str  # a movement type, or RESERVE, COMMIT, RELEASE, EXPIRE
    quantity: int
    key: str  # event id, or reservation id
    source: str  # a movement's source, or a reservation's channel
    correlation_id: str


class ItemLedger:
    """The last `capacity` changes over all rows, in plain lists: a record is on the hot path
    of every movement and hold, and list stores cost a fraction of numpy scalar stores.

    Not in snapshots: after a restart it holds what the journal replayed since the snapshot.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.total = 0  # changes ever recorded; change n lives in slot n % capacity
        self.renew_instance()
        self.row = [_NO_ROW] * capacity
        self.seq = [0] * capacity
        self.at_ms = [0] * capacity
        self.quantity = [0] * capacity
        self.what: list[str] = [""] * capacity
        self.key: list[str] = [""] * capacity
        self.source: list[str] = [""] * capacity
        self.correlation_id: list[str] = [""] * capacity

    def record(self, row: int, seq: int, at_ms: int, what: str, quantity: int, key: str,
               source: str = "", correlation_id: str = "") -> None:
        slot = self.total % self.capacity
        self.row[slot], self.seq[slot], self.at_ms[slot] = row, seq, at_ms
        self.quantity[slot], self.what[slot], self.key[slot] = quantity, what, key
        self.source[slot], self.correlation_id[slot] = source, correlation_id
        self.total += 1

    def record_holds(self, rows: np.ndarray, seqs: np.ndarray, at_ms: int,
                     quantities: np.ndarray, keys: Sequence[str], sources: Sequence[str],
                     correlation_ids: Sequence[str]) -> None:
        """Many RESERVE changes at once (a run of single-line holds), oldest first: slice
        stores, so a run of thousands costs a few list copies."""
        count = len(rows)
        skip = max(0, count - self.capacity)  # only the newest fit
        self.total += skip
        count -= skip
        columns = ((self.row, rows.tolist()), (self.seq, seqs.tolist()),
                   (self.at_ms, [at_ms] * len(rows)), (self.quantity, quantities.tolist()),
                   (self.what, ["RESERVE"] * len(rows)), (self.key, list(keys)),
                   (self.source, list(sources)), (self.correlation_id, list(correlation_ids)))
        start = self.total % self.capacity
        first = min(count, self.capacity - start)  # up to the ring's end, the rest wraps
        for column, values in columns:
            values = values[skip:]
            column[start:start + first] = values[:first]
            column[:count - first] = values[first:]
        self.total += count

    def renew_instance(self) -> None:
        """Name this ring afresh, so watch cursors taken before (on another actor's ring,
        or before rows changed without a record) are known to be stale. The name is read
        only by watchers: no replayed state depends on it."""
        self.instance = secrets.token_hex(8)

    def rows_since(self, total: int) -> list[int] | None:
        """The rows changed by changes total.. (each once, oldest first); None if some of
        them have left the ring (or `total` is not from this ring)."""
        if not 0 <= total <= self.total or self.total - total > self.capacity:
            return None
        start, end = total % self.capacity, self.total % self.capacity
        if self.total - total == self.capacity or (end < start):
            recent = self.row[start:] + self.row[:end]
        else:
            recent = self.row[start:end]
        return list(dict.fromkeys(recent))

    def last(self, row: int, count: int) -> list[LedgerLine]:
        """The newest `count` changes of `row`, newest first."""
        slots = np.flatnonzero(np.asarray(self.row) == row)
        slots = slots[np.argsort(np.asarray(self.seq)[slots], kind="stable")[::-1][:count]]
        return [LedgerLine(self.seq[s], self.at_ms[s], self.what[s], self.quantity[s],
                           self.key[s], self.source[s], self.correlation_id[s])
                for s in slots.tolist()]
