"""Find the row of a (sku, location): open addressing over 64-bit key hashes, in numpy.

A batch of lookups is a few vectorized gathers instead of a Python dict probe per line,
and the index costs 24 bytes a row (a hash column and a half-empty slot table) instead
of a dict entry and an int object. Matches are exact: a hash hit is confirmed against
the stored SKU and location, and the rare key whose hash another key already has lives
in a small dict.
"""

from __future__ import annotations

import numpy as np

EMPTY = -1


class ItemIndex:
    """Maps keys to rows of an ItemTable; rows are numbered by the table, never removed."""

    def __init__(self, capacity: int = 2048) -> None:
        self.slots = np.full(capacity, EMPTY, dtype=np.int64)
        self.row_hash = np.zeros(capacity // 2, dtype=np.int64)
        self.collided: dict[tuple[str, int], int] = {}  # (sku, location id) -> row
        self.size = 0

    # ---- lookups ------------------------------------------------------------------------

    def find(self, key_hash: int, sku: str, location_id: int, row_sku: list[str],
             row_location: np.ndarray) -> int:
        """One key's row or EMPTY: the probe loop in Python, for the one-at-a-time paths."""
        slots, mask = self.slots, len(self.slots) - 1
        position = key_hash & mask
        while (row := int(slots[position])) != EMPTY:
            if int(self.row_hash[row]) == key_hash:
                if row_sku[row] == sku and int(row_location[row]) == location_id:
                    return row
                return self.collided.get((sku, location_id), EMPTY)
            position = (position + 1) & mask
        return EMPTY

    def find_many(self, hashes: np.ndarray, skus: list[str], location_ids: np.ndarray,
                  row_sku: list[str], row_location: np.ndarray) -> np.ndarray:
        """Rows of many keys, EMPTY where a key is unknown."""
        rows = self._probe(hashes)
        found = np.flatnonzero(rows != EMPTY)
        if len(found):
            found_rows = rows[found]
            same = (row_location[found_rows] == location_ids[found]) & np.fromiter(
                map(str.__eq__, map(row_sku.__getitem__, found_rows.tolist()),
                    map(skus.__getitem__, found.tolist())), dtype=np.bool_, count=len(found))
            for position in found[~same].tolist():
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
            slot_rows = slots[position]
            occupied = slot_rows != EMPTY
            hit = occupied & (self.row_hash[np.where(occupied, slot_rows, 0)]
                              == hashes[pending])
            rows[pending[hit]] = slot_rows[hit]
            further = occupied & ~hit  # linear probing: the slot holds another key
            pending, position = pending[further], (position[further] + 1) & mask
        return rows

    # ---- additions ----------------------------------------------------------------------

    def add(self, hashes: np.ndarray, skus: list[str], location_ids: np.ndarray) -> None:
        """Index rows size, size+1, ... for keys the caller knows to be new."""
        first = self.size
        self.size = first + len(hashes)
        if self.size > len(self.row_hash):
            self.row_hash = _grown(self.row_hash, self.size)
        self.row_hash[first:self.size] = hashes
        if 2 * self.size > len(self.slots):
            capacity = len(self.slots)
            while 2 * self.size > capacity:
                capacity *= 2
            self.slots = np.full(capacity, EMPTY, dtype=np.int64)
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
        mask = len(self.slots) - 1
        position = hashes & mask
        while len(rows):
            claim = (self.slots[position] == EMPTY) & _first_of_each(position)
            self.slots[position[claim]] = rows[claim]
            rows, position = rows[~claim], position[~claim]
            position = np.where(self.slots[position] == EMPTY, position, (position + 1) & mask)


def _first_of_each(values: np.ndarray) -> np.ndarray:
    """True at the first occurrence of each value."""
    first = np.zeros(len(values), dtype=np.bool_)
    first[np.unique(values, return_index=True)[1]] = True
    return first


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    grown = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
