"""The pure partition state machine: a batch of commands in, one result per command out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine import channel_watch, fence_commands, movements, reserve_batch
from engine.backorders import BackorderBook, is_backordered
from engine.batch_results import BatchResults
from engine.channel_book import ChannelBook
from engine.channels import Channel, ChannelRules
from engine.config import PartitionConfig
from engine.history import MovementHistory
from engine.idempotency import IdempotencyTable
from engine.item_ledger import ItemLedger
from engine.items import ItemTable
from engine.model import (
    QUANTITIES,
    READS,
    AvailabilityResult,
    Command,
    Commit,
    ConfirmHold,
    Expire,
    ExpireResult,
    Explanation,
    FenceShown,
    GetAvailability,
    ItemAvailability,
    LedgerChange,
    LineCode,
    LineResult,
    Movement,
    MovementCode,
    MovementResult,
    Outcome,
    Release,
    ReservationResult,
    ReservationState,
    ReservationStatus,
    Reserve,
    ReserveLine,
    ReserveResult,
    Result,
    RulesResult,
    SetChannelRules,
    SettleFences,
    WatchChanges,
)
from engine.reservations import Reservation, ReservationBook

HELD, COMMITTED = ReservationState.HELD, ReservationState.COMMITTED
# What available_to_sell takes off on_hand (DESIGN section 4).
_DEDUCTIONS = ("reserved", "committed", "safety_stock", "damaged", "quality_control")


class PartitionState:
    """One partition's SKU-locations, reservations, remembered keys and sequence number.

    Nothing here reads a clock or draws an id: `now_ms` comes with each batch and
    reservation ids come minted inside the commands, so replaying a journal of batches
    rebuilds exactly the same state.
    """

    def __init__(self, config: PartitionConfig | None = None) -> None:
        config = config or PartitionConfig()
        self.config = config
        self.seq = 0  # sequence number of the last applied command
        # The latest batch time seen: time never runs backwards inside a partition, so a
        # clock stepped back (or a batch of an older gateway) cannot reorder history.
        self.now_ms = 0
        self.items = ItemTable()
        self.reservations = ReservationBook(config.finished_reservations_window_ms,
                                            config.finished_reservations_max)
        self.idempotency = IdempotencyTable(config.idempotency_window_ms,
                                            config.idempotency_keys_max)
        self.history = MovementHistory(config.movement_history_entries, self.items.capacity)
        # (row, on_hand_delta, committed_delta, source) of the last batch, for its journal
        # entry: the ERP sync job drains these instead of re-deriving them.
        self.ledger_rows: list[tuple[int, int, int, str]] = []
        self.item_ledger = ItemLedger(config.item_ledger_entries)
        # Default rules until a SetChannelRules in the history puts others in force.
        self.channel_book = ChannelBook(ChannelRules(), self.items.capacity)
        self.backorders = BackorderBook(self.items.capacity)

    # ---- the one way in ---------------------------------------------------------------

    def apply(self, batch: Sequence[Command], now_ms: int) -> BatchResults:
        """Apply commands in order; every command but a read takes the next sequence number."""
        now_ms = max(now_ms, self.now_ms)
        seq_before = self.seq
        self.ledger_rows = []
        results = BatchResults()
        position, end = 0, len(batch)
        while position < end:
            command = batch[position]
            if type(command) is Reserve and len(command.lines) == 1:
                run, keys, ids = reserve_batch.take_run(self, batch, position)
                if len(run) >= self.config.vectorized_run_min:
                    held = reserve_batch.apply_run(self, run, keys, ids, now_ms)
                    results.add_run(held)
                    reserve_batch.record_holds(self.item_ledger, held, ids, self.seq, now_ms)
                    self.seq += len(run)
                    position += len(run)
                    continue
            results.append(self._apply_one(command, now_ms))
            position += 1
        if self.seq != seq_before:  # reads are not journaled, so they move no clock
            self.now_ms = now_ms
        return results

    def _apply_one(self, command: Command, now_ms: int) -> Result:
        kind = type(command)
        if kind in READS:
            return self._read(command)
        self.seq += 1
        if kind is Expire:
            return self._expire(now_ms)
        if kind is SetChannelRules:
            rules = ChannelRules.from_json(command.rules_json)
            self.put_channel_rules(rules)
            return RulesResult(Outcome.OK, len(rules.channels))
        if kind is FenceShown:  # no key: applying one twice equals applying it once
            return fence_commands.fence_shown(self, command, now_ms)
        if kind is SettleFences:
            return fence_commands.settle_fences(self, command, now_ms)
        if kind is ConfirmHold:  # judged on the hold's state every time, even when retried
            return self._confirm_hold(command, now_ms)
        key = command.idempotency_key
        remembered = self.idempotency.get(key)
        if remembered is not None:
            return _answer_again(remembered, command)
        if kind is Reserve:
            result = self._reserve(command, now_ms)
        elif kind is Commit:
            result = self._commit(command, now_ms)
        elif kind is Release:
            result = self._release(command, now_ms)
        else:
            result = movements.apply(self, command, now_ms)
        # A refusal that changed nothing and is no answer to the caller's payload (a
        # malformed command, a movement the engine could not apply) is not remembered,
        # so a corrected retry with the same key is judged afresh.
        if result.outcome is not Outcome.INVALID and getattr(result, "code", None) \
                is not MovementCode.REJECTED:
            self.idempotency.remember(key, command, result, now_ms)
        return result

    # ---- reservations -------------------------------------------------------------------

    def _reserve(self, command: Reserve, now_ms: int) -> ReserveResult:
        refusal = _malformed(command) or (command.reservation_id in self.reservations.by_id
                                          and "reservation_id: is already in use")
        book = self.channel_book
        if not refusal and not book.rules.knows(command.channel):
            refusal = f"channel: {command.channel!r} is not a configured channel"
        if refusal:  # validation refuses these first; the core still never over-grants
            return ReserveResult(Outcome.INVALID, "", None, (), 0, refusal)
        items = self.items
        channel = book.channel(command.channel)
        if channel.plain and all(line.location for line in command.lines):
            lines = command.lines
            rows = [items.find(line.sku, line.location) for line in lines]
            available = [None if row is None else book.plain_available(items, row)
                         for row in rows]
            backordered = [False] * len(lines)
        else:
            lines, rows, available = self._channel_lines(channel, command.lines)
            backordered = self._backorderable(channel, lines, rows, available)
        granted = _grant(command, lines, available, backordered)
        status = _status(command, granted)
        held = [(row, units, backorder) for row, units, backorder
                in zip(rows, granted, backordered, strict=True) if units]
        for line, (row, units, backorder) in enumerate(held):
            if backorder:
                self.backorders.add(row, command.reservation_id, line, units)
            else:
                items.columns["reserved"][row] += units
                book.hold(command.channel, row, units)
                for other, freed in book.sold(command.channel, items, row, units):
                    self.item_ledger.record(other, self.seq, now_ms, "FENCE", -freed,
                                            command.reservation_id, command.channel,
                                            command.correlation_id)
            self.item_ledger.record(row, self.seq, now_ms,
                                    "BACKORDER" if backorder else "RESERVE", units,
                                    command.reservation_id, command.channel,
                                    command.correlation_id)
        results = tuple(_line_result(*answer) for answer in
                        zip(lines, available, granted, backordered, strict=True))
        if status is ReservationStatus.REJECTED:
            return ReserveResult(Outcome.OK, "", status, results, 0)
        expires_at_ms = now_ms + 1000 * (command.ttl_seconds
                                         or self.config.hold_ttl_seconds_default)
        self.reservations.add_held(Reservation(
            command.reservation_id, tuple(row for row, _, _ in held),
            tuple(units for _, units, _ in held), expires_at_ms, command.order_ref,
            command.channel, backordered=[flag for _, _, flag in held] if any(backordered)
            else None))
        return ReserveResult(Outcome.OK, command.reservation_id, status, results, expires_at_ms)

    def _backorderable(self, channel: Channel, lines, rows, available) -> list[bool]:
        """Which lines the channel may hold as backorders: short of stock, a SKU it may
        backorder, and room under its limit and the location's incoming stock."""
        incoming = self.items.columns["incoming"]
        asked: dict[int, int] = {}
        flags = []
        for line, row, ats in zip(lines, rows, available, strict=True):
            flag = (row is not None and ats < line.quantity and channel.backorders(line.sku)
                    and self.backorders.room(row, channel.backorder_limit, int(incoming[row]))
                    - asked.get(row, 0) >= line.quantity)
            if flag:
                asked[row] = asked.get(row, 0) + line.quantity
            flags.append(flag)
        return flags

    def _channel_lines(self, channel: Channel, lines) -> tuple[list, list, list]:
        """Lines with their location chosen, rows and what the channel may sell of each.

        A line without a location is sourced from the channel's location group, in its
        priority order: the first location with enough for the whole line, else the one
        with the most. Units an earlier line of the cart asked of a row are not offered
        again to a later one.
        """
        items, book = self.items, self.channel_book
        asked: dict[int, int] = {}
        resolved, rows, available = [], [], []
        for line in lines:
            if line.location:
                row = items.find(line.sku, line.location)
                candidates = [] if row is None else [row]
            else:
                candidates = book.sourcing_order(channel, items,
                                                 items.rows_of_sku.get(line.sku, []))
            offers = [book.offer(channel, items, row) - asked.get(row, 0)
                      for row in candidates]
            pick = next((i for i, offer in enumerate(offers) if offer >= line.quantity),
                        max(range(len(offers)), key=offers.__getitem__, default=None))
            if pick is None:
                resolved.append(line)
                rows.append(None)
                available.append(None)
                continue
            row = candidates[pick]
            asked[row] = asked.get(row, 0) + line.quantity
            resolved.append(ReserveLine(line.sku, items.locations[items.row_location[row]],
                                        line.quantity))
            rows.append(row)
            available.append(max(offers[pick], 0))
        return resolved, rows, available

    def _commit(self, command: Commit, now_ms: int) -> ReservationResult:
        reservation = self._live(command.reservation_id, now_ms)
        if reservation is None:
            return _not_found(command.reservation_id)
        state = reservation.state
        if state is HELD:
            self._move_units(reservation, "reserved", "committed", "COMMIT", now_ms)
            reservation.state = COMMITTED
            reservation.order_ref = command.order_ref or reservation.order_ref
            self.reservations.index_order(reservation)
        elif state not in (COMMITTED, ReservationState.SHIPPED):
            return ReservationResult(Outcome.FAILED_PRECONDITION, command.reservation_id,
                                     state, f"reservation is {state.name.lower()}")
        return ReservationResult(Outcome.OK, command.reservation_id, reservation.state)

    def _release(self, command: Release, now_ms: int) -> ReservationResult:
        reservation = self._live(command.reservation_id, now_ms)
        if reservation is None:
            return _not_found(command.reservation_id)
        state = reservation.state
        if state is HELD:
            self._move_units(reservation, "reserved", None, "RELEASE", now_ms)
        elif state is COMMITTED:
            self._move_units(reservation, "committed", None, "RELEASE", now_ms)
        elif state is ReservationState.SHIPPED:
            return ReservationResult(Outcome.FAILED_PRECONDITION, command.reservation_id,
                                     state, "reservation has shipped")
        if state in (HELD, COMMITTED):
            self.reservations.finish(reservation, ReservationState.RELEASED, now_ms)
        return ReservationResult(Outcome.OK, command.reservation_id, reservation.state)

    def _confirm_hold(self, command: ConfirmHold, now_ms: int) -> ReservationResult:
        reservation = self._live(command.reservation_id, now_ms)
        if reservation is None:
            return _not_found(command.reservation_id)
        state = reservation.state
        if state is HELD:
            # A retried cart confirms again with a later instant and gets the first
            # confirmation back; only a hold still held may be told it is.
            remembered = self.idempotency.get(command.idempotency_key)
            if remembered is not None and remembered[0] == command._replace(
                    expires_at_unix_ms=remembered[0].expires_at_unix_ms):
                return remembered[1]
            reservation.expires_at_ms = command.expires_at_unix_ms
            self.reservations.reschedule(reservation)
            result = ReservationResult(Outcome.OK, command.reservation_id, state,
                                       expires_at_unix_ms=reservation.expires_at_ms)
            self.idempotency.remember(command.idempotency_key, command, result, now_ms)
            return result
        if state is COMMITTED:  # a retried cart may find its hold already committed
            return ReservationResult(Outcome.OK, command.reservation_id, state,
                                     expires_at_unix_ms=reservation.expires_at_ms)
        return ReservationResult(Outcome.FAILED_PRECONDITION, command.reservation_id,
                                 state, f"reservation is {state.name.lower()}")

    def _expire(self, now_ms: int) -> ExpireResult:
        expired = 0
        for reservation in self.reservations.pop_due(now_ms):
            if reservation.state is HELD:  # listed twice only if an id was reused
                self._expire_hold(reservation, now_ms)
                expired += 1
        self.reservations.forget_finished(now_ms)
        self.idempotency.forget_expired(now_ms)
        return ExpireResult(Outcome.OK, expired)

    def _live(self, reservation_id: str, now_ms: int) -> Reservation | None:
        """The reservation, with a hold that is past due expired first (sweeps lag)."""
        reservation = self.reservations.get(reservation_id)
        if reservation is not None and reservation.state is HELD \
                and reservation.expires_at_ms <= now_ms:
            self._expire_hold(reservation, now_ms)
        return reservation

    def _expire_hold(self, reservation: Reservation, now_ms: int) -> None:
        self._move_units(reservation, "reserved", None, "EXPIRE", now_ms)
        self.reservations.finish(reservation, ReservationState.EXPIRED, now_ms)

    def _move_units(self, reservation: Reservation, source: str, target: str | None,
                    what: str, now_ms: int) -> None:
        """Move a reservation's unshipped units out of one quantity and into another."""
        columns = self.items.columns
        committed_sign = (target == "committed") - (source == "committed")
        for line, row in enumerate(reservation.rows):
            units = reservation.unshipped(line)
            if is_backordered(reservation, line):  # no stock was held for it
                if target is None:
                    self.backorders.cancel(row, units)
                self.item_ledger.record(row, self.seq, now_ms, what, units,
                                        reservation.reservation_id, reservation.channel)
                continue
            columns[source][row] -= units
            if target is not None:
                columns[target][row] += units
            else:  # released or expired: the channel's quota gets the units back
                self.channel_book.hold(reservation.channel, row, -units)
            if committed_sign and units:
                self.ledger_rows.append((row, 0, committed_sign * units, ""))
            self.item_ledger.record(row, self.seq, now_ms, what, units,
                                    reservation.reservation_id, reservation.channel)

    def ledger_changes(self) -> list[LedgerChange]:
        """The last batch's changes to on_hand and committed, summed per item and source."""
        totals: dict[tuple[int, str], list[int]] = {}
        for row, on_hand_delta, committed_delta, source in self.ledger_rows:
            total = totals.setdefault((row, source), [0, 0])
            total[0] += on_hand_delta
            total[1] += committed_delta
        items = self.items
        return [LedgerChange(items.row_sku[row], items.locations[items.row_location[row]],
                             on_hand_delta, committed_delta, source)
                for (row, source), (on_hand_delta, committed_delta) in totals.items()
                if on_hand_delta or committed_delta]

    # ---- reads and loads ------------------------------------------------------------------

    def _read(self, command) -> Result:
        if type(command) is GetAvailability:
            return self.query(command.items, command.explain, command.channel)
        if type(command) is WatchChanges:
            return channel_watch.changes(self, command)
        return channel_watch.snapshot_page(self, command)

    def fill_backorders(self, row: int, now_ms: int) -> None:
        """Stock arrived at `row`: turn the oldest backorders there into ordinary holds."""
        if row not in self.backorders.queues:  # the common case, on every receipt
            return
        columns = self.items.columns

        def convert(reservation: Reservation, line: int) -> None:
            units = reservation.quantities[line]
            if reservation.state is COMMITTED:
                columns["committed"][row] += units
                self.ledger_rows.append((row, 0, units, ""))
            else:
                columns["reserved"][row] += units
            self.channel_book.hold(reservation.channel, row, units)
            self.item_ledger.record(row, self.seq, now_ms, "BACKORDER_FILLED", units,
                                    reservation.reservation_id, reservation.channel)

        # Other channels' fences are not a backorder's to fill from (its Reserve's rule).
        self.backorders.fill(row, self.reservations.get,
                             lambda reservation: self.items.available_to_sell(row)
                             - self.channel_book.fenced_from(reservation.channel, row),
                             convert)

    def put_channel_rules(self, rules: ChannelRules) -> None:
        """Apply `rules` from now on, with each quota channel's holds recounted and the
        fences of channels still ring-fenced kept."""
        previous, self.channel_book = self.channel_book, ChannelBook(rules, self.items.capacity)
        self.channel_book.adopt_fences(previous)
        # Every channel figure may change without a row changing: watchers re-read all.
        self.item_ledger.renew_instance()
        self.channel_book.rebuild(reservation for reservation in self.reservations.all()
                                  if reservation.state in (HELD, COMMITTED))
        self.channel_book.ensure_rows(self.items.capacity)

    def query(self, items: Iterable, explain: bool = False,
              channel_name: str = "") -> AvailabilityResult:
        """The quantities of each (sku, location); unknown ones read as zero, not known.

        Under a channel with rules, available_to_sell is what that channel may sell there;
        under a plain one, the location's own figure (negative when it is exposure) less
        any ring-fenced channel's fence there.
        """
        book = self.channel_book
        if not book.rules.knows(channel_name):
            return AvailabilityResult(Outcome.INVALID, (), f"channel: {channel_name!r} is "
                                      "not a configured channel")
        channel = book.channel(channel_name)
        answers = []
        for sku, location in items:
            row = self.items.find(sku, location)
            if row is None:
                answers.append(ItemAvailability(sku, location, *(0,) * 8, False))
                continue
            quantities = self.items.quantities(row)
            if channel.plain:
                available = book.plain_available(self.items, row)
            else:
                available = book.figure(channel, self.items, row,
                                        self.items.available_to_sell(row))
            answers.append(ItemAvailability(sku, location, *quantities, available, True,
                                            self.explain(sku, location) if explain else None,
                                            int(self.backorders.units[row])))
        return AvailabilityResult(Outcome.OK, tuple(answers))

    def explain(self, sku: str, location: str, recent_max: int = 10) -> Explanation | None:
        """The breakdown of a SKU-location's available-to-sell, None if it is unknown."""
        row = self.items.find(sku, location)
        if row is None:
            return None
        quantities = dict(zip(QUANTITIES, self.items.quantities(row), strict=True))
        terms = (("on_hand", quantities["on_hand"]),
                 *((name, -quantities[name]) for name in _DEDUCTIONS))
        sold_out = self.items.available_to_sell(row) <= 0
        return Explanation(terms, tuple(self.item_ledger.last(row, recent_max)),
                           self.reservations.earliest_hold_expiry_ms(row) if sold_out else 0)

    def load_items(self, skus: list[str], locations: list[str], on_hand: Sequence[int]) -> None:
        """Seed new SKU-locations with on-hand stock in bulk (an initial ERP import)."""
        quantities = np.asarray(on_hand, dtype=np.int64)
        if not len(skus) == len(locations) == len(quantities):
            raise ValueError("skus, locations and on_hand must be as long as each other")
        if self.items.size + len(skus) > self.config.items_max:
            raise ValueError(f"a partition holds at most {self.config.items_max} SKU-locations")
        rows = self.items.add_many(skus, locations)
        self.items.columns["on_hand"][rows] = quantities
        self.history.ensure_rows(self.items.capacity)
        self.channel_book.ensure_rows(self.items.capacity)
        self.backorders.ensure_rows(self.items.capacity)
        # Seeded rows are not in the ring of changes: a watcher must re-read everything.
        self.item_ledger.renew_instance()

    def row_of(self, sku: str, location: str) -> int:
        """The row of a SKU-location, created empty on first sight (movements create items)."""
        row = self.items.find(sku, location)
        if row is None:
            if self.items.size >= self.config.items_max:
                raise PartitionFull(f"a partition holds at most {self.config.items_max} "
                                    "SKU-locations")
            row = self.items.find_or_add(sku, location)
            self.history.ensure_rows(self.items.capacity)
            self.channel_book.ensure_rows(self.items.capacity)
            self.backorders.ensure_rows(self.items.capacity)
        return row

    def quantities_of(self, sku: str, location: str) -> dict[str, int] | None:
        row = self.items.find(sku, location)
        if row is None:
            return None
        return dict(zip(QUANTITIES, self.items.quantities(row), strict=True))


class PartitionFull(Exception):
    """A movement would create a SKU-location past `items_max`."""


def _malformed(command: Reserve) -> str:
    """What makes a Reserve impossible to apply safely, or "" (validation's job, rechecked)."""
    seen: dict[tuple[str, str], int] = {}
    for index, line in enumerate(command.lines):
        if not (type(line.quantity) is int and line.quantity >= 1):
            return f"lines[{index}].quantity: must be at least 1"
        first = seen.setdefault((line.sku, line.location), index)
        if first != index:
            return f"lines[{index}]: repeats the sku and location of lines[{first}]"
    return "" if command.lines else "lines: must not be empty"


def _grant(command: Reserve, lines, available: list[int | None],
           backordered: list[bool]) -> list[int]:
    """Units granted per line (a backordered line in full): all-or-nothing unless partial
    holds are allowed."""
    if command.allow_partial:
        return [line.quantity if backorder else 0 if ats is None
                else max(0, min(line.quantity, ats))
                for line, ats, backorder in zip(lines, available, backordered, strict=True)]
    if all(backorder or (ats is not None and ats >= line.quantity)
           for line, ats, backorder in zip(lines, available, backordered, strict=True)):
        return [line.quantity for line in lines]
    return [0] * len(lines)


def _status(command: Reserve, granted: list[int]) -> ReservationStatus:
    if not any(granted):
        return ReservationStatus.REJECTED
    if all(units == line.quantity for line, units in zip(command.lines, granted, strict=True)):
        return ReservationStatus.HELD
    return ReservationStatus.PARTIALLY_HELD


def _line_result(line, ats: int | None, units: int, backordered: bool) -> LineResult:
    if backordered and units:
        return LineResult(line.sku, line.location, line.quantity, 0, LineCode.BACKORDERED,
                          ats, units)
    if ats is None:
        code = LineCode.UNKNOWN_ITEM
    else:
        code = LineCode.OK if ats >= line.quantity else LineCode.INSUFFICIENT_AVAILABLE
    return LineResult(line.sku, line.location, line.quantity, units, code,
                      (ats - units) if ats is not None else 0)


def _not_found(reservation_id: str) -> ReservationResult:
    return ReservationResult(Outcome.NOT_FOUND, reservation_id, None, "no such reservation")


def _answer_again(remembered: tuple, command: Command) -> Result:
    """A key seen before: the first result for the same payload, a refusal otherwise."""
    first_command, first_result = remembered
    same = type(first_command) is type(command) and first_command.payload() == command.payload()
    if type(command) is Movement:
        if same:
            if first_result.code is MovementCode.APPLIED:
                return first_result._replace(code=MovementCode.DUPLICATE,
                                             message="already applied")
            return first_result
        return MovementResult(Outcome.IDEMPOTENCY_CONFLICT, command.event_id,
                              MovementCode.REJECTED, "event_id was used with another payload")
    if same:
        return first_result
    message = "idempotency_key was used with another payload"
    if type(command) is Reserve:
        return ReserveResult(Outcome.IDEMPOTENCY_CONFLICT, "", None, (), 0, message)
    return ReservationResult(Outcome.IDEMPOTENCY_CONFLICT, command.reservation_id, None, message)
