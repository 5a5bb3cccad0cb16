"""Channel figures inside a partition: what each channel may sell of a SKU, where, and its holds.

A channel with a quota needs to know how much it already holds at each location, so
those channels get one int64 column each, kept in step with their reservations. The
rest of a channel's figure (its location group, buffers, publish threshold) is arithmetic
on the row's available-to-sell, done here where the numbers are.
"""

from __future__ import annotations

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
        slot = self._slot.get(channel.name)
        held = 0 if slot is None else int(self.held[row, slot])
        return channel_available(available, buffer.of(available), cap_percent, held,
                                 channel.publish_min)

    def sells_at(self, channel: Channel, items: ItemTable, row: int) -> bool:
        return self._terms_of(channel, items, row)[0]

    def figure_of_row(self, channel: Channel, items: ItemTable, row: int) -> int:
        return self.figure(channel, items, row, items.available_to_sell(row))

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
