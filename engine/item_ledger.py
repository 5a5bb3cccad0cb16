"""The latest changes to any SKU-location, kept in a ring, so an answer can say what made it."""

from __future__ import annotations

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
    """The last `capacity` changes over all rows; numbers in numpy, names in lists.

    Not in snapshots: after a restart it holds what the journal replayed since the snapshot.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.total = 0  # changes ever recorded; change n lives in slot n % capacity
        self.row = np.full(capacity, _NO_ROW, dtype=np.int64)
        self.seq = np.zeros(capacity, dtype=np.int64)
        self.at_ms = np.zeros(capacity, dtype=np.int64)
        self.quantity = np.zeros(capacity, dtype=np.int64)
        self.what: list[str] = [""] * capacity
        self.key: list[str] = [""] * capacity
        self.source: list[str] = [""] * capacity
        self.correlation_id: list[str] = [""] * capacity

    def record(self, row: int, seq: int, at_ms: int, what: str, quantity: int, key: str,
               source: str = "", correlation_id: str = "") -> None:
        slot = self.total % self.capacity
        self.row[slot], self.seq[slot], self.at_ms[slot] = row, seq, at_ms
        self.quantity[slot] = quantity
        self.what[slot], self.key[slot] = what, key
        self.source[slot], self.correlation_id[slot] = source, correlation_id
        self.total += 1

    def record_holds(self, rows: np.ndarray, seqs: np.ndarray, at_ms: int,
                     quantities: np.ndarray, keys: Sequence[str], sources: Sequence[str],
                     correlation_ids: Sequence[str]) -> None:
        """Many RESERVE changes at once (a run of single-line holds), oldest first."""
        count = len(rows)
        if count > self.capacity:  # only the newest fit
            skip = count - self.capacity
            self.total += skip
            rows, seqs, quantities = rows[skip:], seqs[skip:], quantities[skip:]
            keys, sources = keys[skip:], sources[skip:]
            correlation_ids = correlation_ids[skip:]
            count = self.capacity
        slots = (self.total + np.arange(count)) % self.capacity
        self.row[slots], self.seq[slots], self.at_ms[slots] = rows, seqs, at_ms
        self.quantity[slots] = quantities
        for slot, key, source, correlation_id in zip(slots.tolist(), keys, sources,
                                                     correlation_ids, strict=True):
            self.what[slot], self.key[slot] = "RESERVE", key
            self.source[slot], self.correlation_id[slot] = source, correlation_id
        self.total += count

    def last(self, row: int, count: int) -> list[LedgerLine]:
        """The newest `count` changes of `row`, newest first."""
        slots = np.flatnonzero(self.row == row)
        slots = slots[np.argsort(self.seq[slots], kind="stable")[::-1][:count]]
        return [LedgerLine(int(self.seq[s]), int(self.at_ms[s]), self.what[s],
                           int(self.quantity[s]), self.key[s], self.source[s],
                           self.correlation_id[s]) for s in slots.tolist()]
