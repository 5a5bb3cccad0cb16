"""Reservations of one partition: their lines, their state, when holds fall due."""

from __future__ import annotations

import heapq
from collections import deque

from engine.model import ReservationState

FINISHED = (ReservationState.RELEASED, ReservationState.EXPIRED, ReservationState.SHIPPED)


class Reservation:
    """One cart's hold: the rows it holds and how many units of each."""

    __slots__ = ("reservation_id", "rows", "quantities", "shipped", "state", "expires_at_ms",
                 "order_ref", "channel", "backordered")

    def __init__(self, reservation_id: str, rows: tuple[int, ...], quantities: tuple[int, ...],
                 expires_at_ms: int, order_ref: str = "", channel: str = "",
                 state: ReservationState = ReservationState.HELD,
                 shipped: list[int] | None = None,
                 backordered: list[bool] | None = None) -> None:
        self.reservation_id = reservation_id
        self.rows = rows
        self.quantities = quantities
        self.shipped = shipped  # units shipped per line, once a shipment names it
        self.state = state
        self.expires_at_ms = expires_at_ms
        self.order_ref = order_ref
        self.channel = channel
        # Per line, whether it waits for stock as a backorder; None when none ever did.
        self.backordered = backordered

    def unshipped(self, line: int) -> int:
        return self.quantities[line] - (self.shipped[line] if self.shipped else 0)


class ReservationBook:
    """Live reservations, a due-time index of holds, and finished ones kept for a window.

    A hold granted in a run of single-line Reserves is stored as the run's shared
    `(command, run, index)` entry and becomes a Reservation object only when something
    touches it (commit, release, expiry): most holds never need more than the entry.
    """

    def __init__(self, finished_window_ms: int, finished_max: int) -> None:
        self.by_id: dict[str, Reservation | tuple] = {}
        self.by_order: dict[str, list[str]] = {}  # order_ref -> committed reservation ids
        # Holds due at the same instant share a bucket: one heap entry per instant,
        # not per hold, because a batch's holds mostly share `now_ms` and TTL.
        self._due_buckets: dict[int, list[str]] = {}
        self._due_instants: list[int] = []
        self._finished: deque[tuple[int, str]] = deque()
        self.finished_window_ms = finished_window_ms
        self.finished_max = finished_max

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, reservation_id: str) -> Reservation | None:
        reservation = self.by_id.get(reservation_id)
        if type(reservation) is tuple:
            _, run, index = reservation
            reservation = self.by_id[reservation_id] = run.reservation(index)
        return reservation

    def all(self):
        """Every reservation, live and finished, as Reservation objects."""
        for reservation_id in list(self.by_id):
            yield self.get(reservation_id)

    def add_held(self, reservation: Reservation) -> None:
        self.by_id[reservation.reservation_id] = reservation
        self._due_bucket(reservation.expires_at_ms).append(reservation.reservation_id)

    def reschedule(self, reservation: Reservation) -> None:
        """File a hold under its new due instant; the old bucket's entry no longer matches."""
        self._due_bucket(reservation.expires_at_ms).append(reservation.reservation_id)

    def add_held_run(self, ids: list[str], entries: list[tuple], expires_at_ms: list[int]) -> None:
        """Holds of a run, stored as their shared entries; they mostly share one due instant."""
        self.by_id.update(zip(ids, entries))
        instants = set(expires_at_ms)
        if len(instants) == 1:
            self._due_bucket(instants.pop()).extend(ids)
            return
        for reservation_id, instant in zip(ids, expires_at_ms, strict=True):
            self._due_bucket(instant).append(reservation_id)

    def _due_bucket(self, instant: int) -> list[str]:
        bucket = self._due_buckets.get(instant)
        if bucket is None:
            bucket = self._due_buckets[instant] = []
            heapq.heappush(self._due_instants, instant)
        return bucket

    def add_finished(self, reservation: Reservation, finished_at_ms: int) -> None:
        """Restore a finished reservation (snapshots); it stays until its window ends."""
        self.by_id[reservation.reservation_id] = reservation
        self._finished.append((finished_at_ms, reservation.reservation_id))

    def index_order(self, reservation: Reservation) -> None:
        if reservation.order_ref:
            self.by_order.setdefault(reservation.order_ref, []).append(
                reservation.reservation_id)

    def finish(self, reservation: Reservation, state: ReservationState, now_ms: int) -> None:
        reservation.state = state
        self._finished.append((now_ms, reservation.reservation_id))
        if len(self._finished) > self.finished_max:
            self._forget_oldest_finished()
        ids = self.by_order.get(reservation.order_ref)
        if ids and reservation.reservation_id in ids:
            ids.remove(reservation.reservation_id)
            if not ids:
                del self.by_order[reservation.order_ref]

    def next_due_ms(self) -> int | None:
        """The earliest instant a hold may fall due (it may since have left), or None."""
        return self._due_instants[0] if self._due_instants else None

    def earliest_hold_expiry_ms(self, row: int) -> int:
        """When the first live hold on `row` lapses, 0 if none does: due instants are read in
        order until one holds the row (cost grows with the holds due before it)."""
        for instant in sorted(self._due_instants):
            for reservation_id in self._due_buckets[instant]:
                entry = self.by_id.get(reservation_id)
                if entry is None:
                    continue
                rows = (entry[1].rows[entry[2]],) if type(entry) is tuple else entry.rows
                if row in rows:
                    reservation = self.get(reservation_id)
                    if reservation.state is ReservationState.HELD and \
                            reservation.expires_at_ms == instant:
                        return instant
        return 0

    def count_holds(self, due_by_ms: int) -> tuple[int, int]:
        """(holds live, those of them due by `due_by_ms`), read from the due-time index.

        Safe to call from another thread than the one applying batches, without the
        partition's lock: the buckets are copied in one step, and an entry that changes
        meanwhile is counted as it was or as it is (a gauge, not a ledger). The cost grows
        with the holds filed, so operators poll it every few seconds, not per batch.
        """
        live = due = 0
        by_id = self.by_id
        for instant, bucket in list(self._due_buckets.items()):
            for reservation_id in bucket:
                entry = by_id.get(reservation_id)
                # A run's entry is a hold nothing has touched since it was granted.
                if entry is None or (type(entry) is not tuple and (
                        entry.state is not ReservationState.HELD
                        or entry.expires_at_ms != instant)):
                    continue
                live += 1
                due += instant <= due_by_ms
        return live, due

    def pop_due(self, now_ms: int) -> list[Reservation]:
        """Holds whose time has come; entries for holds no longer held are dropped."""
        due = []
        while self._due_instants and self._due_instants[0] <= now_ms:
            instant = heapq.heappop(self._due_instants)
            for reservation_id in self._due_buckets.pop(instant):
                reservation = self.get(reservation_id)
                # The instant must match too: a forgotten reservation's id may be reused.
                if reservation is not None and reservation.state is ReservationState.HELD \
                        and reservation.expires_at_ms == instant:
                    due.append(reservation)
        return due

    def forget_finished(self, now_ms: int) -> None:
        """Drop finished reservations past their window."""
        cutoff_ms = now_ms - self.finished_window_ms
        while self._finished and self._finished[0][0] < cutoff_ms:
            self._forget_oldest_finished()

    def _forget_oldest_finished(self) -> None:
        reservation_id = self._finished.popleft()[1]
        # Only if that id still names a finished reservation: never drop a live one.
        if getattr(self.by_id.get(reservation_id), "state", None) in FINISHED:
            del self.by_id[reservation_id]

    def finished_in_order(self):
        """(finished_at_ms, reservation) oldest first, for snapshots."""
        for finished_at_ms, reservation_id in self._finished:
            yield finished_at_ms, self.get(reservation_id)
