"""Find the row of a (sku, location): open addressing over 64-bit key hashes, in numpy.

A batch of lookups is a few vectorized gathers instead of a Python dict probe per line;
the index costs 48 bytes a row (a half-empty table of (hash, row) slots, plus hash and
tag columns). A hit in a batch is confirmed by its tag, the row's location and a CRC-32
of its SKU: with the 64-bit hash a 96-bit fingerprint, so an unknown key passes for a
known one with odds of about rows/2**96 a lookup (and the per-process key of Python's
string hash keeps anyone from crafting one). One key looked up alone is compared
exactly. The rare key whose hash another key already has lives in a small dict.
"""

from __future__ import annotations

import numpy as np

from engine.arrays import grown

EMPTY = -1


class ItemIndex:
    """Maps keys to rows of an ItemTable; rows are numbered by the table, never removed.

    A slot holds a (hash, row) pair, so a probe learns whether it hit from the one cache
    line it reads; a hit's tag (CRC-32 of the SKU, location id) is one more read.
    """

    def __init__(self, capacity: int = 2048) -> None:
        self.slots = _empty_slots(capacity)
        self.row_hash = np.zeros(capacity // 2, dtype=np.int64)  # for rebuilding the slots
        self.row_tag = np.zeros(capacity // 2, dtype=np.int64)
        self.collided: dict[tuple[str, int], int] = {}  # (sku, location id) -> row
        self.size = 0

    # ---- lookups ------------------------------------------------------------------------

    def find(self, key_hash: int, sku: str, location_id: int, row_sku: list[str],
             row_location: np.ndarray) -> int:
        """One key's row or EMPTY, compared exactly: for the one-at-a-time paths."""
        # ndarray.item reads one scalar as a Python int at half the cost of int(a[i, j]).
        item, mask = self.slots.item, len(self.slots) - 1
        position = key_hash & mask
        while (row := item(position, 1)) != EMPTY:
            if item(position, 0) == key_hash:
                if row_sku[row] == sku and row_location.item(row) == location_id:
                    return row
                return self.collided.get((sku, location_id), EMPTY)
            position = (position + 1) & mask
        return EMPTY

    def find_many(self, hashes: np.ndarray, tags: np.ndarray, skus: list[str],
                  location_ids: np.ndarray) -> np.ndarray:
        """Rows of many keys, EMPTY where a key is unknown."""
        rows = self._probe(hashes)
        found = np.flatnonzero(rows != EMPTY)
        if len(found):
            for position in found[self.row_tag[rows[found]] != tags[found]].tolist():
                rows[position] = self.collided.get(
                    (skus[position], int(location_ids[position])), EMPTY)
        return rows

    def _probe(self, hashes: np.ndarray) -> np.ndarray:
        """The row holding each hash (EMPTY if none), probing all keys a step at a time."""
        slots, mask = self.slots, len(self.slots) - 1
        rows = np.full(len(hashes), EMPTY, dtype=np.int64)
        pending = np.arange(len(hashes))
        position = hashes & mask
        while len(pending):
            entries = slots[position]
            occupied = entries[:, 1] != EMPTY
            hit = occupied & (entries[:, 0] == hashes[pending])
            rows[pending[hit]] = entries[hit, 1]
            further = occupied & ~hit  # linear probing: the slot holds another key
            pending, position = pending[further], (position[further] + 1) & mask
        return rows

    # ---- additions ----------------------------------------------------------------------

    def add(self, hashes: np.ndarray, tags: np.ndarray, skus: list[str],
            location_ids: np.ndarray) -> None:
        """Index rows size, size+1, ... for keys the caller knows to be new."""
        first = self.size
        self.size = first + len(hashes)
        if self.size > len(self.row_hash):
            self.row_hash = grown(self.row_hash, self.size)
            self.row_tag = grown(self.row_tag, self.size)
        self.row_hash[first:self.size] = hashes
        self.row_tag[first:self.size] = tags
        if 2 * self.size > len(self.slots):
            capacity = len(self.slots)
            while 2 * self.size > capacity:
                capacity *= 2
            self.slots = _empty_slots(capacity)
            key_of_row = {row: key for key, row in self.collided.items()}
            self.collided = {}
            self._place(np.arange(first, dtype=np.int64), self.row_hash[:first],
                        key_of_row.__getitem__)
        self._place(np.arange(first, self.size, dtype=np.int64), hashes,
                    lambda row: (skus[row - first], int(location_ids[row - first])))

    def _place(self, rows: np.ndarray, hashes: np.ndarray, key_of) -> None:
        """Put rows into free slots, all at once where their probe paths do not clash."""
        # A key whose hash is already indexed (by an earlier row, or an earlier one of
        # this batch) is kept in `collided`; `key_of(row)` names that row's key.
        clash = ~_first_of_each(hashes) | (self._probe(hashes) != EMPTY)
        for row in rows[clash].tolist():
            self.collided[key_of(row)] = row
        rows, hashes = rows[~clash], hashes[~clash]
        slots, mask = self.slots, len(self.slots) - 1
        position = hashes & mask
        while len(rows):
            claim = (slots[position, 1] == EMPTY) & _first_of_each(position)
            slots[position[claim], 0] = hashes[claim]
            slots[position[claim], 1] = rows[claim]
            rows, hashes, position = rows[~claim], hashes[~claim], position[~claim]
            position = np.where(slots[position, 1] == EMPTY, position, (position + 1) & mask)


def _empty_slots(capacity: int) -> np.ndarray:
    slots = np.zeros((capacity, 2), dtype=np.int64)
    slots[:, 1] = EMPTY
    return slots


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value."""
    first = np.zeros(len(values), dtype=np.bool_)
    first[np.unique(values, return_index=True)[1]] = True
    return first
