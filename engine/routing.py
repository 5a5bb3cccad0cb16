"""Which virtual partition owns a SKU: a stable hash, the same in every process and release."""

from __future__ import annotations

import zlib

from engine.ids import partitions_of_reservation
from engine.model import Command, Commit, ConfirmHold, GetAvailability, Movement, Release, Reserve


def partition_of(sku: str, partitions: int) -> int:
    """All locations of a SKU land in one partition (Python's `hash` is salted per process)."""
    return zlib.crc32(sku.encode()) % partitions


def partitions_named(command: Command, partitions: int) -> tuple[int, ...]:
    """The partitions a command names by its content (its SKU or reservation id), for a
    batch sent without the router's tags (tools, tests); () for one that names none."""
    kind = type(command)
    if kind is Reserve and command.lines:
        return (partition_of(command.lines[0].sku, partitions),)
    if kind is Movement:
        return (partition_of(command.sku, partitions),)
    if kind is GetAvailability and command.items:
        return (partition_of(command.items[0].sku, partitions),)
    if kind in (Commit, Release, ConfirmHold):
        return partitions_of_reservation(command.reservation_id) or ()
    return ()
