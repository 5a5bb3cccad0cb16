"""How far what a channel shows is from the truth: per SKU-location, the channel's figure
and the quantity it last acknowledged, with running totals kept as either changes."""

from __future__ import annotations

from typing import NamedTuple

NETWORK, LOCATION = "network", "location"
LEVELS = (NETWORK, LOCATION)


class Divergence(NamedTuple):
    """Totals of one level: Σ|published − actual|, how many show more than there is, and
    the units they overstate (the oversell exposure)."""

    diverged_units: int = 0
    exposed_items: int = 0
    units_at_risk: int = 0


def level_of(location: str) -> str:
    """A SKU's network figure (location "") and its locations' figures are totalled apart:
    summed together they would count every unit twice."""
    return NETWORK if location == "" else LOCATION


def _terms(published: int | None, actual: int) -> tuple[int, int, int]:
    over = (published or 0) - actual
    return abs(over), int(over > 0), max(over, 0)


class DivergenceBook:
    """Per (sku, location): [actual, published]; a figure never set counts as 0 (a channel
    never told shows nothing; `published` answers None for it). Totals are updated per
    change, never recomputed."""

    def __init__(self, keys_max: int = 5_000_000) -> None:
        self._keys_max = keys_max
        self._entries: dict[tuple[str, str], list] = {}  # [actual, published or None]
        self._totals = {level: [0, 0, 0] for level in LEVELS}
        self.keys_refused = 0  # keys past keys_max: neither tracked nor published

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def __iter__(self):
        return iter(self._entries)

    def actual(self, key: tuple[str, str]) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def published(self, key: tuple[str, str]) -> int | None:
        """The quantity the channel last acknowledged; None if it never acknowledged one."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def set_actual(self, key: tuple[str, str], value: int) -> bool:
        """False when the book is full and `key` is new."""
        return self._set(key, 0, value)

    def set_published(self, key: tuple[str, str], value: int) -> bool:
        """False when the book is full and `key` is new."""
        return self._set(key, 1, value)

    def totals(self, level: str) -> Divergence:
        return Divergence(*self._totals[level])

    def _set(self, key: tuple[str, str], slot: int, value: int) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._keys_max:
                self.keys_refused += 1
                return False
            entry = self._entries[key] = [0, None]
        totals = self._totals[level_of(key[1])]
        for index, term in enumerate(_terms(entry[1], entry[0])):
            totals[index] -= term
        entry[slot] = value
        for index, term in enumerate(_terms(entry[1], entry[0])):
            totals[index] += term
        return True
