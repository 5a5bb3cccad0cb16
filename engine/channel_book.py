"""Channel figures inside a partition: what each channel may sell of a SKU, where, and its holds.

A channel with a quota needs to know how much it already holds at each location, so
those channels get one int64 column each, kept in step with their reservations. A
ring-fenced channel gets two: `fence`, the units it was shown and may still sell, which
every other channel is kept off, and `shown`, the figure last published to it less its
sales since. The rest of a channel's figure (its location group, buffers, publish
threshold) is arithmetic on the row's available-to-sell, done here where the numbers are.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import numpy as np

from engine.arrays import grown
from engine.backorders import is_backordered
from engine.channels import DEFAULT, Channel, ChannelRules, channel_available
from engine.items import ItemTable


class ChannelBook:
    """The channel rules of a partition, applied to its item rows."""

    def __init__(self, rules: ChannelRules, capacity: int) -> None:
        self.rules = rules
        quota_channels = [channel.name for channel in rules.channels
                          if channel.share_percent is not None]
        self._slot = {name: slot for slot, name in enumerate(quota_channels)}
        self.held = np.zeros((capacity, len(quota_channels)), dtype=np.int64)
        fenced = [channel.name for channel in rules.channels if channel.ring_fence]
        self._fence_slot = {name: slot for slot, name in enumerate(fenced)}
        self.fence = np.zeros((capacity, len(fenced)), dtype=np.int64)
        self.shown = np.zeros((capacity, len(fenced)), dtype=np.int64)
        # Per channel, the publishes fenced and not yet settled, oldest first, each with the
        # units it showed per row (less the channel's sales since): a settle must keep
        # covering the figures of later publishes the channel may not have applied yet.
        self.unsettled: dict[str, collections.deque[tuple[int, dict[int, int]]]] = {
            name: collections.deque() for name in fenced}
        # (channel, location id) -> (sells there, buffer, cap %): fnmatch once per pair.
        self._terms: dict[tuple[str, int], tuple] = {}
        plain = {channel.name for channel in rules.channels if channel.plain}
        self._plain_names = frozenset(plain | ({""} if DEFAULT in plain else set()))

    def channel(self, name: str) -> Channel:
        return self.rules.get(name)

    def is_plain(self, name: str) -> bool:
        """Whether the channel sells every location's whole available-to-sell (no rules)."""
        return name in self._plain_names

    def ensure_rows(self, capacity: int) -> None:
        self.held = grown(self.held, capacity)
        self.fence = grown(self.fence, capacity)
        self.shown = grown(self.shown, capacity)

    # ---- fences of ring-fenced channels ---------------------------------------------------

    def fence_slot(self, name: str) -> int | None:
        """The column of a ring-fenced channel, None for any other."""
        return self._fence_slot.get(name or DEFAULT)

    def fenced_from(self, name: str, row: int) -> int:
        """Units at `row` fenced for channels other than `name`."""
        if not self._fence_slot:
            return 0
        fences = self.fence[row]
        slot = self._fence_slot.get(name or DEFAULT)
        return int(fences.sum()) - (0 if slot is None else int(fences[slot]))

    def sold(self, name: str, items: ItemTable, row: int, units: int) -> list[tuple[int, int]]:
        """A ring-fenced channel's Reserve took `units` at `row`: out of its fence and shown
        there first, then out of its fences at the SKU's other rows (a network figure is
        one promise spread over rows, sold wherever the order is sourced). Giving units
        back (release, expiry) restores nothing: the next publish fences again. Returns
        (row, units) of each other row whose fence fell (other channels' figures rose)."""
        slot = self._fence_slot.get(name or DEFAULT)
        freed: list[tuple[int, int]] = []
        if slot is None:
            return freed
        self.shown[row, slot] = max(0, int(self.shown[row, slot]) - units)
        for _, shown in self.unsettled[name or DEFAULT]:
            if row in shown:
                shown[row] = max(0, shown[row] - units)
        for other in [row, *(r for r in items.rows_of_sku[items.row_sku[row]] if r != row)]:
            taken = min(units, int(self.fence[other, slot]))
            self.fence[other, slot] -= taken
            units -= taken
            if taken and other != row:
                freed.append((other, taken))
            if not units:
                return freed
        return freed

    def plain_available(self, items: ItemTable, row: int) -> int:
        """A plain channel's figure: the row's available-to-sell (negative when exposure),
        less every fence there (then never below 0, unless it is exposure already)."""
        available = items.available_to_sell(row)
        # Every fence: a plain channel is never ring-fenced (even `default`, when it is).
        fenced = int(self.fence[row].sum()) if self._fence_slot else 0
        return max(available - fenced, 0) if fenced and available > 0 else available

    def plain_available_rows(self, items: ItemTable, rows: np.ndarray) -> np.ndarray:
        """plain_available for many rows at once (the vectorized Reserve path)."""
        available = items.available_to_sell(rows)
        if not self._fence_slot:
            return available
        fenced = self.fence[rows].sum(axis=1)
        return np.where((fenced > 0) & (available > 0), np.maximum(available - fenced, 0),
                        available)

    def adopt_fences(self, previous: ChannelBook) -> None:
        """Keep the fences of channels ring-fenced under both the previous rules and these."""
        for name, slot in self._fence_slot.items():
            old = previous.fence_slot(name)
            if old is not None:
                rows = min(len(self.fence), len(previous.fence))
                self.fence[:rows, slot] = previous.fence[:rows, old]
                self.shown[:rows, slot] = previous.shown[:rows, old]
                self.unsettled[name] = previous.unsettled[name]

    def dump_fences(self, size: int) -> dict:
        """The fence columns of the first `size` rows, per channel, for a snapshot."""
        return {name: [self.fence[:size, slot].tobytes(), self.shown[:size, slot].tobytes(),
                       [[publish_seq, list(shown.items())]
                        for publish_seq, shown in self.unsettled[name]]]
                for name, slot in self._fence_slot.items()}

    def load_fences(self, saved: dict) -> None:
        for name, (fence, shown, unsettled) in saved.items():
            slot = self._fence_slot.get(name)
            if slot is None:  # no longer ring-fenced under the rules in force
                continue
            fence, shown = np.frombuffer(fence, np.int64), np.frombuffer(shown, np.int64)
            self.fence[:len(fence), slot] = fence
            self.shown[:len(shown), slot] = shown
            self.unsettled[name] = collections.deque(
                (publish_seq, dict(map(tuple, rows))) for publish_seq, rows in unsettled)

    # ---- holds of quota channels ----------------------------------------------------------

    def hold(self, name: str, row: int, units: int) -> None:
        """A channel's reservation took `units` at `row` (negative: gave them back)."""
        slot = self._slot.get(name or DEFAULT)
        if slot is not None:
            self.held[row, slot] += units

    def rebuild(self, reservations: Iterable) -> None:
        """Recount every quota channel's holds from live reservations (after a restore)."""
        self.held[:] = 0
        for reservation in reservations:
            for line, row in enumerate(reservation.rows):
                if not is_backordered(reservation, line):  # no stock held for it yet
                    self.hold(reservation.channel, row, reservation.unshipped(line))

    # ---- figures ------------------------------------------------------------------------

    def figure(self, channel: Channel, items: ItemTable, row: int, available: int) -> int:
        """What `channel` may sell at `row`, whose available-to-sell is `available`."""
        sells, buffer, cap_percent = self._terms_of(channel, items, row)
        if not sells:
            return 0
        if self._fence_slot:  # other channels' fences are not this one's to sell
            available -= self.fenced_from(channel.name, row)
        slot = self._slot.get(channel.name)
        held = 0 if slot is None else int(self.held[row, slot])
        return channel_available(available, buffer.of(available), cap_percent, held,
                                 channel.publish_min)

    def sells_at(self, channel: Channel, items: ItemTable, row: int) -> bool:
        return self._terms_of(channel, items, row)[0]

    def figure_of_row(self, channel: Channel, items: ItemTable, row: int) -> int:
        return self.figure(channel, items, row, items.available_to_sell(row))

    def offer(self, channel: Channel, items: ItemTable, row: int) -> int:
        """What a Reserve of `channel` may take at `row`: its figure, and for a ring-fenced
        channel at least its own fence (what it was shown is its to sell, even where its
        quota has shrunk since as other channels sold), within what others may not claim."""
        figure = self.figure_of_row(channel, items, row)
        slot = self._fence_slot.get(channel.name)
        if slot is None or not self.sells_at(channel, items, row):
            return figure
        # Its fences over the SKU's rows: a network figure may be sold at any one of them.
        own = int(self.fence[items.rows_of_sku[items.row_sku[row]], slot].sum())
        if not own:
            return figure
        unclaimed = items.available_to_sell(row) - self.fenced_from(channel.name, row)
        return max(figure, min(own, unclaimed))

    def sourcing_order(self, channel: Channel, items: ItemTable, rows: list[int]) -> list[int]:
        """A SKU's rows the channel sells from, in its reserve-anywhere priority."""
        by_location = {items.locations[items.row_location[row]]: row for row in rows}
        return [by_location[location]
                for location in channel.in_priority(list(by_location))]

    def _terms_of(self, channel: Channel, items: ItemTable, row: int) -> tuple:
        location_id = int(items.row_location[row])
        key = (channel.name, location_id)
        terms = self._terms.get(key)
        if terms is None:
            location = items.locations[location_id]
            terms = (channel.sells_at(location), channel.buffer_at(location),
                     self.rules.cap_percent(channel, location))
            self._terms[key] = terms
        return terms
