"""SKU-location rows: one int64 numpy column per quantity, and the index that finds a row."""

from __future__ import annotations

import itertools
import zlib
from collections import namedtuple
from operator import attrgetter

import numpy as np

from engine.arrays import grown
from engine.item_index import EMPTY, ItemIndex
from engine.model import NOT_SELLABLE, QUANTITIES

_CAPACITY_MIN = 1024
_Line = namedtuple("_Line", "sku location")
_SKU = attrgetter("sku")
_LOCATION = attrgetter("location")
_ON_HAND = QUANTITIES.index("on_hand")
_NOT_SELLABLE = [QUANTITIES.index(name) for name in NOT_SELLABLE]
_LOCATION_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant: spreads location ids over the hash


class ItemTable:
    """Rows are appended, never removed; arrays double when full so growth amortises."""

    def __init__(self, capacity: int = _CAPACITY_MIN) -> None:
        capacity = max(capacity, _CAPACITY_MIN)
        self.size = 0
        # One int64 column per quantity, stored row-major: a row's quantities share a cache
        # line, so reading a random row's availability costs one memory fetch, not seven.
        self.matrix = np.zeros((capacity, len(QUANTITIES)), dtype=np.int64)
        self.columns = _column_views(self.matrix)
        # Locations are few (stores, DCs): interned to small ids, stored as int32 per row.
        self.locations: list[str] = []
        self._location_ids: dict[str, int] = {}
        self._location_mix: list[int] = []
        self.row_location = np.zeros(capacity, dtype=np.int32)
        self.row_sku: list[str] = []
        # Every row of a SKU (its locations): reserve-anywhere and network figures need them.
        self.rows_of_sku: dict[str, list[int]] = {}
        self._index = ItemIndex()
        self._last_sku = self._last_location = None
        self._last_row = EMPTY

    @property
    def capacity(self) -> int:
        return len(self.row_location)

    # ---- finding rows -------------------------------------------------------------------

    def find(self, sku: str, location: str) -> int | None:
        # A movement's handler and its ledger note look up the same key, one after the
        # other: the last hit is kept (rows never move, so it cannot go stale).
        if sku is self._last_sku and location is self._last_location:
            return self._last_row
        location_id = self._location_ids.get(location)
        if location_id is None:
            return None
        row = self._index.find(self._hash(sku, location_id), sku, location_id, self.row_sku,
                               self.row_location)
        if row == EMPTY:
            return None
        self._last_sku, self._last_location, self._last_row = sku, location, row
        return row

    def rows_of(self, lines) -> np.ndarray:
        """Rows of many (sku, location) lines at once, -1 where unknown."""
        location_ids = np.fromiter(map(self._location_ids.get, map(_LOCATION, lines),
                                       itertools.repeat(-1)), dtype=np.int64, count=len(lines))
        skus = list(map(_SKU, lines))
        known = location_ids >= 0
        rows = np.full(len(lines), EMPTY, dtype=np.int64)
        if known.all():
            return self._rows_of_ids(skus, location_ids)
        positions = np.flatnonzero(known)
        rows[positions] = self._rows_of_ids([skus[i] for i in positions.tolist()],
                                            location_ids[positions])
        return rows

    @staticmethod
    def _tags(skus: list[str], location_ids: np.ndarray) -> np.ndarray:
        """What a hash hit is confirmed by: CRC-32 of the SKU above the location id."""
        checks = np.fromiter(map(zlib.crc32, map(str.encode, skus)), dtype=np.int64,
                             count=len(skus))
        return (checks << 32) | location_ids

    def _hash(self, sku: str, location_id: int) -> int:
        return hash(sku) ^ self._location_mix[location_id]

    def _hashes(self, skus: list[str], location_ids: np.ndarray) -> np.ndarray:
        """64-bit key hashes, as `_hash`; Python's str hash is per process, as is the index."""
        sku_hashes = np.fromiter(map(hash, skus), dtype=np.int64, count=len(skus))
        return sku_hashes ^ np.array(self._location_mix, dtype=np.int64)[location_ids]

    # ---- adding rows --------------------------------------------------------------------

    def find_or_add(self, sku: str, location: str) -> int:
        row = self.find(sku, location)
        if row is None:
            row = int(self.add_many([sku], [location])[0])
        return row

    def add_many(self, skus: list[str], locations: list[str], known_new: bool = False
                 ) -> np.ndarray:
        """Add rows for new SKU-locations (an initial load adds many); returns their rows.

        `known_new` skips the check for repeats, for rows that come from a snapshot of a
        table, which held each SKU-location once.
        """
        # Checked before anything is added, so a refused load leaves the table as it was.
        if not known_new and (len(set(zip(skus, locations, strict=True))) != len(skus) or (
                self.rows_of(list(map(_Line, skus, locations))) != EMPTY).any()):
            raise ValueError("a SKU-location of the load is repeated or already exists")
        location_ids = np.array([self.location_id(location) for location in locations],
                                dtype=np.int64)
        first = self.size
        self._reserve(first + len(skus))
        self._index.add(self._hashes(skus, location_ids), self._tags(skus, location_ids), skus,
                        location_ids)
        self.row_location[first:first + len(skus)] = location_ids
        self.row_sku.extend(skus)
        rows_of_sku = self.rows_of_sku
        for row, sku in enumerate(skus, first):
            rows = rows_of_sku.get(sku)
            if rows is None:
                rows_of_sku[sku] = [row]
            else:
                rows.append(row)
        self.size = first + len(skus)
        return np.arange(first, self.size, dtype=np.int64)

    def _rows_of_ids(self, skus: list[str], location_ids: np.ndarray) -> np.ndarray:
        return self._index.find_many(self._hashes(skus, location_ids),
                                     self._tags(skus, location_ids), skus, location_ids)

    def location_id(self, location: str) -> int:
        """The small id of a location, interned on first sight."""
        location_id = self._location_ids.get(location)
        if location_id is None:
            location_id = len(self.locations)
            self._location_ids[location] = location_id
            self.locations.append(location)
            mix = ((location_id + 1) * _LOCATION_MIX) & (2**64 - 1)
            self._location_mix.append(mix - 2**64 if mix >= 2**63 else mix)  # as int64
        return location_id

    # ---- reading quantities -------------------------------------------------------------

    def available_to_sell(self, rows: np.ndarray | int):
        """available_to_sell of one row (an int) or of many rows (an int64 array)."""
        if isinstance(rows, int):  # plain ints: numpy's per-call cost dwarfs one row's sum
            quantities = self.matrix[rows].tolist()
            return quantities[_ON_HAND] - sum(quantities[i] for i in _NOT_SELLABLE)
        block = self.matrix[rows]
        return block[:, _ON_HAND] - block[:, _NOT_SELLABLE].sum(axis=1)

    def quantities(self, row: int) -> tuple[int, ...]:
        """The quantities of one row in QUANTITIES order, as Python ints."""
        return tuple(self.matrix[row].tolist())

    def _reserve(self, rows_needed: int) -> None:
        if rows_needed > self.capacity:
            self.matrix = grown(self.matrix, rows_needed)
            self.columns = _column_views(self.matrix)
            self.row_location = grown(self.row_location, len(self.matrix))


def _column_views(matrix: np.ndarray) -> dict[str, np.ndarray]:
    return {name: matrix[:, index] for index, name in enumerate(QUANTITIES)}
