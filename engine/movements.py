"""What each stock movement does to a partition's quantities (DESIGN section 4's table)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.backorders import is_backordered
from engine.history import Superseded
from engine.model import (
    Movement,
    MovementCode,
    MovementResult,
    MovementType,
    Outcome,
    ReservationState,
)

if TYPE_CHECKING:
    from engine.partition_state import PartitionState


def apply(state: PartitionState, movement: Movement, now_ms: int) -> MovementResult:
    """Apply one movement; what the physical world already did is applied even past zero."""
    occurred_at_ms = movement.occurred_at_unix_ms or now_ms
    skew_ms = state.config.clock_skew_ms_max
    if occurred_at_ms > now_ms + skew_ms:
        return _rejected(movement, f"occurred_at_unix_ms is more than {skew_ms} ms ahead "
                                   "of the engine clock")
    handler = _HANDLERS.get(movement.type)
    if handler is None:
        return _rejected(movement, f"type {movement.type} is not a movement type")
    refusal = _malformed(movement) or _no_room(state, movement)
    if refusal:
        return _rejected(movement, refusal)
    refusal, message = handler(state, movement, occurred_at_ms, now_ms)
    if refusal:
        return _rejected(movement, refusal)
    _note_in_item_ledger(state, movement, now_ms)
    return MovementResult(Outcome.OK, movement.event_id, MovementCode.APPLIED, message)


def _note_in_item_ledger(state: PartitionState, m: Movement, now_ms: int) -> None:
    record, find = state.item_ledger.record, state.items.find
    record(find(m.sku, m.location), state.seq, now_ms, _NAMES[m.type], m.quantity,
           m.event_id, m.source, m.correlation_id)
    if m.type is MovementType.TRANSFER_OUT:
        record(find(m.sku, m.destination_location), state.seq, now_ms,
               "TRANSFER_OUT (arriving)", m.quantity, m.event_id, m.source, m.correlation_id)


def _malformed(m: Movement) -> str:
    """Validation's quantity rules, rechecked: a negative DAMAGE would break an invariant."""
    if m.type in (MovementType.CYCLE_COUNT, MovementType.SAFETY_STOCK_SET):
        ok = m.quantity >= 0
    else:
        ok = m.quantity != 0 if m.type is MovementType.ADJUSTMENT else m.quantity >= 1
    if not ok:
        return f"quantity: {m.quantity} is not allowed for {MovementType(m.type).name}"
    if m.type is MovementType.TRANSFER_OUT and m.destination_location in ("", m.location):
        return "destination_location: must name another location"
    return ""


def _no_room(state: PartitionState, m: Movement) -> str:
    if state.items.size + 2 <= state.config.items_max:
        return ""  # a movement adds at most two rows: no lookups needed far from the bound
    locations = {m.location, m.destination_location} - {""}
    new_rows = sum(state.items.find(m.sku, location) is None for location in locations)
    if state.items.size + new_rows > state.config.items_max:
        return f"the partition holds its most SKU-locations ({state.config.items_max})"
    return ""


def _rejected(movement: Movement, message: str) -> MovementResult:
    return MovementResult(Outcome.OK, movement.event_id, MovementCode.REJECTED, message)


def _change_on_hand(state, m: Movement, row: int, delta: int, occurred_at_ms: int,
                    now_ms: int) -> str:
    """Change on_hand, unless a count as of a later instant already saw this change."""
    counted_as_of_ms = state.history.counted_as_of_ms.item(row)
    # At the count's very instant, sequence decides: applied after the count, on top.
    if occurred_at_ms < counted_as_of_ms:
        return f"on_hand already counted as of {counted_as_of_ms}: left as counted"
    state.items.columns["on_hand"][row] += delta
    state.history.record(row, occurred_at_ms, now_ms, delta)
    state.ledger_rows.append((row, delta, 0, m.source))
    return ""


def _take_floored(state, column: str, row: int, units: int) -> int:
    """Subtract up to `units` without going below zero; returns the shortfall."""
    values = state.items.columns[column]
    taken = min(units, max(values.item(row), 0))
    if taken:
        values[row] -= taken
    return units - taken


def _notes(*notes) -> str:
    return "; ".join(note for note in notes if note)


def _shortfall_note(column: str, shortfall: int) -> str:
    return f"{column} floored at 0 ({shortfall} units were not in it)" if shortfall else ""


def _receipt(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    note = _change_on_hand(state, m, row, m.quantity, occurred_at_ms, now_ms)
    _take_floored(state, "incoming", row, m.quantity)  # unexpected receipts are normal
    state.fill_backorders(row, now_ms)
    return "", note


def _inbound_expected(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)  # first: a new row may grow (replace) the columns
    state.items.columns["incoming"][row] += m.quantity
    return "", ""


def _adjustment(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    return "", _change_on_hand(state, m, row, m.quantity, occurred_at_ms, now_ms)


def _sale(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    return "", _change_on_hand(state, m, row, -m.quantity, occurred_at_ms, now_ms)


def _cycle_count(state, m, occurred_at_ms, now_ms):
    """on_hand := counted as of `occurred_at`, plus what moved after that instant."""
    occurred_at_ms = min(occurred_at_ms, now_ms)  # nobody counts the future
    row = state.items.find(m.sku, m.location)
    after = 0
    if row is not None:
        try:
            after = state.history.changes_after(row, occurred_at_ms,
                                                state.config.clock_skew_ms_max)
        except Superseded as later:
            return "", f"superseded by a count as of {later.later_count_at_ms}: no change"
        if after is None:
            return ("the count predates the movement history this partition keeps; "
                    "recount, or post an ADJUSTMENT"), ""
    row = state.row_of(m.sku, m.location)
    on_hand = state.items.columns["on_hand"]
    delta = m.quantity + after - int(on_hand[row])
    on_hand[row] += delta
    state.history.record(row, occurred_at_ms, now_ms, delta, is_count=True)
    if delta:
        state.ledger_rows.append((row, delta, 0, m.source))
    return "", f"{after:+d} units moved after the count" if after else ""


def _shipment(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    note = _change_on_hand(state, m, row, -m.quantity, occurred_at_ms, now_ms)
    unmatched = _ship_committed(state, m, row, now_ms)
    return "", _notes(note, unmatched and (f"{unmatched} units matched no committed "
                                           "reservation: committed unchanged for them"))


def _ship_committed(state, m: Movement, row: int, now_ms: int) -> int:
    """Ship the named reservation's (or order's) committed units; returns units unmatched."""
    book = state.reservations
    candidates = [m.reservation_id] if m.reservation_id else list(book.by_order.get(m.order_ref,
                                                                                      ()))
    committed = state.items.columns["committed"]
    remaining = m.quantity
    for reservation_id in candidates:
        reservation = book.get(reservation_id)
        if reservation is None or reservation.state is not ReservationState.COMMITTED:
            continue
        for line, reserved_row in enumerate(reservation.rows):
            if reserved_row != row or not remaining or is_backordered(reservation, line):
                continue
            units = min(remaining, reservation.unshipped(line))
            if reservation.shipped is None:
                reservation.shipped = [0] * len(reservation.rows)
            reservation.shipped[line] += units
            committed[row] -= units
            state.channel_book.hold(reservation.channel, row, -units)
            state.ledger_rows.append((row, 0, -units, m.source))
            remaining -= units
        if all(reservation.unshipped(line) == 0 for line in range(len(reservation.rows))):
            book.finish(reservation, ReservationState.SHIPPED, now_ms)
        if not remaining:
            break
    return remaining


def _return_received(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    note = _change_on_hand(state, m, row, m.quantity, occurred_at_ms, now_ms)
    state.items.columns["quality_control"][row] += m.quantity
    return "", note


def _return_restocked(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    return "", _shortfall_note("quality_control",
                               _take_floored(state, "quality_control", row, m.quantity))


def _return_scrapped(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    shortfall = _take_floored(state, "quality_control", row, m.quantity)
    note = _change_on_hand(state, m, row, -m.quantity, occurred_at_ms, now_ms)
    return "", _notes(_shortfall_note("quality_control", shortfall), note)


def _damage(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    state.items.columns["damaged"][row] += m.quantity
    return "", ""


def _transfer_out(state, m, occurred_at_ms, now_ms):
    source = state.row_of(m.sku, m.location)
    destination = state.row_of(m.sku, m.destination_location)
    note = _change_on_hand(state, m, source, -m.quantity, occurred_at_ms, now_ms)
    state.items.columns["incoming"][destination] += m.quantity
    return "", note


def _transfer_in(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    shortfall = _take_floored(state, "incoming", row, m.quantity)
    note = _change_on_hand(state, m, row, m.quantity, occurred_at_ms, now_ms)
    state.fill_backorders(row, now_ms)
    return "", _notes(_shortfall_note("incoming", shortfall), note)


def _safety_stock_set(state, m, occurred_at_ms, now_ms):
    row = state.row_of(m.sku, m.location)
    state.items.columns["safety_stock"][row] = m.quantity
    return "", ""


_NAMES = {kind: kind.name for kind in MovementType}
# Each handler returns (refusal, note): a refusal rejects the movement and changes nothing.
_HANDLERS = {
    MovementType.RECEIPT: _receipt,
    MovementType.INBOUND_EXPECTED: _inbound_expected,
    MovementType.ADJUSTMENT: _adjustment,
    MovementType.CYCLE_COUNT: _cycle_count,
    MovementType.SALE: _sale,
    MovementType.SHIPMENT: _shipment,
    MovementType.RETURN_RECEIVED: _return_received,
    MovementType.RETURN_RESTOCKED: _return_restocked,
    MovementType.RETURN_SCRAPPED: _return_scrapped,
    MovementType.DAMAGE: _damage,
    MovementType.TRANSFER_OUT: _transfer_out,
    MovementType.TRANSFER_IN: _transfer_in,
    MovementType.SAFETY_STOCK_SET: _safety_stock_set,
}
