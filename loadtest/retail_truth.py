"""The physical world of a retail day, kept apart from every system under test: units on
shelves, units in quality control, and orders promised but not yet shipped. Oversells and
undersells per channel are judged here, never by the system that took the order.

An order is *oversold* by the units it was accepted for beyond the DC units physically
there and not already promised to an earlier order, at the instant it was accepted. A
sale is *undersold* by the units a channel refused while such free units existed. Units
in quality control (returns awaiting inspection) are on hand but free for nobody.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass

DC_PREFIX = "dc-"


@dataclass
class ChannelTally:
    """One channel's orders as the world saw them."""

    orders: int = 0
    units: int = 0
    oversold_orders: int = 0
    oversold_units: int = 0
    refused_orders: int = 0
    undersold_units: int = 0
    # Taken by the channel, then refused by the system behind it: the buyer's order is
    # cancelled. It counts as oversold too when no free unit existed when it was taken.
    cancelled_orders: int = 0
    cancelled_units: int = 0
    oversold_cancelled_units: int = 0  # of oversold_units, those refused behind the channel

    def to_json(self) -> dict:
        return asdict(self)


class Truth:
    """Physical units per SKU-location, and units promised per SKU against the DC pool."""

    def __init__(self) -> None:
        self.on_hand: dict[tuple[str, str], int] = defaultdict(int)
        self.quality_control: dict[tuple[str, str], int] = defaultdict(int)
        self.promised: dict[str, int] = defaultdict(int)
        self._dc_sellable: dict[str, int] = defaultdict(int)
        self.tallies: dict[str, ChannelTally] = defaultdict(ChannelTally)

    # ---- the physical world --------------------------------------------------------------

    def _move(self, sku: str, location: str, units: int, sellable: bool = True) -> None:
        self.on_hand[sku, location] += units
        if sellable and location.startswith(DC_PREFIX):
            self._dc_sellable[sku] += units

    def receive(self, sku: str, location: str, units: int) -> None:
        self._move(sku, location, units)

    def remove(self, sku: str, location: str, units: int) -> None:
        """Units leave the shelf unseen by any system (shrink), or at a till (a POS sale)."""
        self._move(sku, location, -units)

    def ship(self, sku: str, location: str, units: int) -> None:
        """A promised order leaves a DC."""
        self._move(sku, location, -units)
        self.promised[sku] -= units

    def return_received(self, sku: str, location: str, units: int) -> None:
        self._move(sku, location, units, sellable=False)
        self.quality_control[sku, location] += units

    def restock(self, sku: str, location: str, units: int) -> None:
        self.quality_control[sku, location] -= units
        if location.startswith(DC_PREFIX):
            self._dc_sellable[sku] += units

    def scrap(self, sku: str, location: str, units: int) -> None:
        self.quality_control[sku, location] -= units
        self.on_hand[sku, location] -= units

    def sellable(self, sku: str, location: str) -> int:
        return self.on_hand[sku, location] - self.quality_control[sku, location]

    def free_units(self, sku: str) -> int:
        """DC units physically sellable and not promised to an order yet (may be negative
        once something oversold)."""
        return self._dc_sellable[sku] - self.promised[sku]

    # ---- what channels did ---------------------------------------------------------------

    def accept(self, channel: str, sku: str, units: int) -> int:
        """A channel took an order: promise its units; return the units oversold."""
        tally = self.tallies[channel]
        oversold = min(units, max(0, units - max(0, self.free_units(sku))))
        tally.orders += 1
        tally.units += units
        if oversold:
            tally.oversold_orders += 1
            tally.oversold_units += oversold
        self.promised[sku] += units
        return oversold

    def cancel(self, channel: str, sku: str, units: int, oversold: int = 0) -> None:
        """An order the channel took (`oversold` units of it with no free unit) was refused
        behind it: nothing is promised after all."""
        tally = self.tallies[channel]
        tally.cancelled_orders += 1
        tally.cancelled_units += units
        tally.oversold_cancelled_units += oversold
        self.promised[sku] -= units

    def refuse(self, channel: str, sku: str, units: int) -> int:
        """A channel turned a buyer away: return the units it could have sold."""
        tally = self.tallies[channel]
        undersold = min(units, max(0, self.free_units(sku)))
        tally.refused_orders += 1
        tally.undersold_units += undersold
        return undersold
