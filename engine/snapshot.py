"""A partition's whole state to msgpack bytes and back."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np

from engine import records
from engine.channels import ChannelRules
from engine.config import PartitionConfig
from engine.model import ReservationState
from engine.partition_state import PartitionState
from engine.reservations import FINISHED, Reservation

FORMAT_VERSION = 1
_HISTORY_ARRAYS = ("row", "occurred_at_ms", "applied_at_ms", "delta", "previous", "is_count")


def dump(state: PartitionState) -> bytes:
    """Serialize everything `load` needs to answer every query the same way."""
    items, history = state.items, state.history
    size = items.size
    return msgpack.packb({
        "version": FORMAT_VERSION,
        "config": state.config.tunables(),
        "channel_rules": state.channel_book.rules.to_json(),
        "seq": state.seq,
        "now_ms": state.now_ms,
        "items": {
            "locations": items.locations,
            "row_location": items.row_location[:size].tobytes(),
            "row_sku": items.row_sku,
            "columns": {name: column[:size].tobytes() for name, column in items.columns.items()},
        },
        "history": {
            "entries_total": history.entries_total,
            "forgotten_applied_at_ms": history.forgotten_applied_at_ms,
            "head": history.head[:size].tobytes(),
            "counted_as_of_ms": history.counted_as_of_ms[:size].tobytes(),
            **{name: getattr(history, name).tobytes() for name in _HISTORY_ARRAYS},
        },
        "reservations": [_reservation_row(r) for r in state.reservations.all()
                         if r.state not in FINISHED],
        # Shipments naming an order walk its reservations in this order.
        "orders": state.reservations.by_order,
        "finished": [[at_ms, *_reservation_row(r)]
                     for at_ms, r in state.reservations.finished_in_order()],
        "backorders": state.backorders.dump(),
        # Fences follow feeds, not reservations: nothing else could rebuild them.
        "channel_fences": state.channel_book.dump_fences(size),
        "idempotency": [[key, records.encode(command), records.encode(result), at_ms]
                        for key, command, result, at_ms in state.idempotency.items_in_order()],
    }, use_bin_type=True)


def load(data: bytes, config: PartitionConfig | None = None) -> PartitionState:
    """Rebuild a PartitionState from `dump`'s bytes, under `config` if one is given."""
    snapshot = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if snapshot["version"] != FORMAT_VERSION:
        raise ValueError(f"snapshot format {snapshot['version']} is not {FORMAT_VERSION}")
    saved = PartitionConfig(**snapshot["config"])
    # The history ring's size is part of the saved data; the rest may be retuned.
    config = dataclasses.replace(config or saved,
                                 movement_history_entries=saved.movement_history_entries)
    state = PartitionState(config)
    state.seq, state.now_ms = snapshot["seq"], snapshot["now_ms"]
    _load_items(state, snapshot["items"])
    _load_history(state, snapshot["history"])
    for row in snapshot["reservations"]:
        reservation = _reservation(row)
        if reservation.state is ReservationState.HELD:
            state.reservations.add_held(reservation)
        else:
            state.reservations.by_id[reservation.reservation_id] = reservation
    state.reservations.by_order.update(snapshot["orders"])
    for finished_at_ms, *row in snapshot["finished"]:
        state.reservations.add_finished(_reservation(row), finished_at_ms)
    for key, command, result, at_ms in snapshot["idempotency"]:
        state.idempotency.remember(key, records.decode(command), records.decode(result), at_ms)
    state.backorders.ensure_rows(state.items.capacity)
    state.backorders.load(snapshot.get("backorders", []), state.reservations.get)
    if "channel_rules" in snapshot:  # snapshots taken before channels had none
        state.put_channel_rules(ChannelRules.from_json(snapshot["channel_rules"]))
    state.channel_book.load_fences(snapshot.get("channel_fences", {}))
    return state


def _load_items(state: PartitionState, items: dict) -> None:
    locations = items["locations"]
    for location in locations:  # interned first, so every location keeps its id
        state.items.location_id(location)
    location_ids = np.frombuffer(items["row_location"], dtype=np.int32)
    rows = state.items.add_many(items["row_sku"], [locations[i] for i in location_ids.tolist()],
                                known_new=True)
    for name, raw in items["columns"].items():
        state.items.columns[name][rows] = np.frombuffer(raw, dtype=np.int64)


def _load_history(state: PartitionState, history: dict) -> None:
    target = state.history
    target.entries_total = history["entries_total"]
    target.forgotten_applied_at_ms = history["forgotten_applied_at_ms"]
    for name in _HISTORY_ARRAYS:
        setattr(target, name, np.frombuffer(history[name],
                                            dtype=getattr(target, name).dtype).copy())
    target.ensure_rows(state.items.capacity)
    for name in ("head", "counted_as_of_ms"):
        saved = np.frombuffer(history[name], dtype=np.int64)
        getattr(target, name)[: len(saved)] = saved


def _reservation_row(r: Reservation) -> list:
    return [r.reservation_id, list(r.rows), list(r.quantities), r.shipped, int(r.state),
            r.expires_at_ms, r.order_ref, r.channel, r.backordered]


def _reservation(row: list) -> Reservation:
    reservation_id, rows, quantities, shipped, state, expires_at_ms, order_ref, channel = row[:8]
    backordered = row[8] if len(row) > 8 else None  # snapshots from before backorders
    return Reservation(reservation_id, tuple(rows), tuple(quantities), expires_at_ms, order_ref,
                       channel, ReservationState(state), shipped, backordered)
