"""Backorders: holds beyond available-to-sell, promised against incoming stock, and filled
by receipts in order of arrival.

A backordered line holds no `reserved` units (there is nothing on hand to hold); its
units are counted here per row, and queued so that a receipt turns the oldest ones into
ordinary holds (or, for an order already committed, into committed units) first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from engine.arrays import grown
from engine.model import ReservationState
from engine.reservations import Reservation

HELD, COMMITTED = ReservationState.HELD, ReservationState.COMMITTED


class BackorderBook:
    """Backordered units per row, and per row the (reservation id, line) queue to fill."""

    def __init__(self, capacity: int) -> None:
        self.units = np.zeros(capacity, dtype=np.int64)
        self.queues: dict[int, deque[tuple[str, int]]] = {}

    def ensure_rows(self, capacity: int) -> None:
        self.units = grown(self.units, capacity)

    def room(self, row: int, limit: int, incoming: int) -> int:
        """Units a channel with `limit` may still backorder at `row`."""
        return max(0, min(limit, incoming) - int(self.units[row]))

    def add(self, row: int, reservation_id: str, line: int, units: int) -> None:
        self.units[row] += units
        self.queues.setdefault(row, deque()).append((reservation_id, line))

    def cancel(self, row: int, units: int) -> None:
        """A backordered line released or expired; its queue entry is skipped when met."""
        self.units[row] -= units

    def fill(self, row: int, reservation_of: Callable[[str], Reservation | None],
             available: Callable[[Reservation], int],
             convert: Callable[[Reservation, int], None]) -> None:
        """Turn the oldest backorders at `row` into ordinary holds while stock allows.

        Strictly in order of arrival: a line too big for what is available waits, and so
        do the lines behind it, so a stream of small orders cannot starve an early big one.
        `available(reservation)` is what that reservation's channel may take at `row`.
        """
        queue = self.queues.get(row)
        while queue:
            reservation_id, line = queue[0]
            reservation = reservation_of(reservation_id)
            if reservation is None or not is_backordered(reservation, line) \
                    or reservation.state not in (HELD, COMMITTED):
                queue.popleft()  # released, expired or shipped since
                continue
            units = reservation.quantities[line]
            if available(reservation) < units:
                break
            queue.popleft()
            self.units[row] -= units
            reservation.backordered[line] = False
            convert(reservation, line)
        if not queue:
            self.queues.pop(row, None)

    # ---- snapshots ------------------------------------------------------------------------

    def dump(self) -> list:
        return [[row, [list(entry) for entry in queue]] for row, queue in self.queues.items()]

    def load(self, saved: list, reservation_of: Callable[[str], Reservation | None]) -> None:
        """Restore the queues of `dump`, recounting units from the live backordered lines."""
        for row, entries in saved:
            self.queues[row] = deque((reservation_id, line) for reservation_id, line in entries)
            for reservation_id, line in entries:
                reservation = reservation_of(reservation_id)
                if reservation is not None and is_backordered(reservation, line) \
                        and reservation.state in (HELD, COMMITTED):
                    self.units[row] += reservation.quantities[line]


def is_backordered(reservation: Reservation, line: int) -> bool:
    return bool(reservation.backordered and reservation.backordered[line])
