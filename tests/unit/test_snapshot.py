"""A partition loaded from its msgpack snapshot answers and evolves exactly like the original."""

from __future__ import annotations

import msgpack
import pytest

from engine import snapshot
from engine.config import PartitionConfig
from engine.model import (
    Commit,
    Expire,
    GetAvailability,
    ItemRef,
    Movement,
    Release,
    Reserve,
    ReserveLine,
)
from engine.model import MovementType as MT
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import observable

T0 = 1_700_000_000_000
SKUS = ("sku-a", "sku-b", "sku-c")
LOCATIONS = ("dc-1", "store-2")
CONFIG = PartitionConfig(hold_ttl_seconds_default=60, idempotency_window_ms=3_600_000,
                         finished_reservations_window_ms=3_600_000,
                         movement_history_entries=8)  # small, so the ring wraps


def cart(key: str, *lines: tuple, rid: str = "", **fields) -> Reserve:
    return Reserve(key, rid or f"res-{key}", tuple(ReserveLine(*line) for line in lines),
                   **fields)


def move(event_id: str, kind: MT, sku: str, quantity: int, location: str = "dc-1",
         **fields) -> Movement:
    return Movement(event_id, "erp", kind, sku, location, quantity, **fields)


# (now_ms, batch) in order: holds of both kinds, commits, releases, expiries, shipments,
# counts, transfers and returns, so every table of the state has something in it.
HISTORY = [
    (T0, [cart(f"run-{n}", ("sku-a", "dc-1", 1 + n % 3), order_ref=f"order-{n}")
          for n in range(12)]),
    (T0 + 1_000, [
        cart("cart-1", ("sku-a", "dc-1", 2), ("sku-b", "dc-1", 3), order_ref="order-cart"),
        cart("cart-2", ("sku-b", "dc-1", 500), ("sku-c", "dc-1", 1), allow_partial=True),
        cart("cart-3", ("sku-b", "dc-1", 500)),  # rejected, and remembered as such
        cart("cart-4", ("sku-c", "store-2", 2), ttl_seconds=600),
        Commit("res-run-0", "commit-0"), Commit("res-run-1", "commit-1", "order-x"),
        Commit("res-run-2", "commit-2"), Commit("res-cart-1", "commit-cart-1"),
        Release("res-run-3", "release-3", "abandoned"), Release("res-run-2", "release-2"),
        move("ship-1", MT.SHIPMENT, "sku-a", 1, reservation_id="res-run-1"),
        move("ship-2", MT.SHIPMENT, "sku-b", 2, order_ref="order-cart"),
        move("ship-3", MT.SHIPMENT, "sku-a", 1, order_ref="order-0"),
        move("sale-1", MT.SALE, "sku-c", 1),
        move("rcv-1", MT.RECEIPT, "sku-c", 5, location="store-2"),
        move("xfer-out", MT.TRANSFER_OUT, "sku-a", 4, destination_location="store-2"),
        move("ret-1", MT.RETURN_RECEIVED, "sku-b", 2),
        move("dmg-1", MT.DAMAGE, "sku-a", 1),
        move("ss-1", MT.SAFETY_STOCK_SET, "sku-b", 3),
    ]),
    (T0 + 20_000, [
        move("count-1", MT.CYCLE_COUNT, "sku-a", 40, occurred_at_unix_ms=T0 + 10_000),
        move("xfer-in", MT.TRANSFER_IN, "sku-a", 3, location="store-2"),
        move("restock-1", MT.RETURN_RESTOCKED, "sku-b", 1),
        move("inbound-1", MT.INBOUND_EXPECTED, "sku-new", 9, location="dc-9"),
    ]),
    (T0 + 61_500, [Expire()]),  # the 60 s holds of the first batch fall due
    (T0 + 62_000, [cart("late", ("sku-c", "dc-1", 1), ttl_seconds=1),
                   move("sale-2", MT.SALE, "sku-a", 2, occurred_at_unix_ms=T0 + 61_000)]),
]

# Applied to the original and to the loaded copy alike.
FURTHER = [
    (T0 + 70_000, [
        # First after the load, so only the restored ring decides that it is REJECTED.
        move("count-first", MT.CYCLE_COUNT, "sku-a", 30, occurred_at_unix_ms=T0 + 30_000),
        cart("run-4", ("sku-a", "dc-1", 2), order_ref="order-4", rid="res-retry"),  # retry
        cart("cart-3", ("sku-b", "dc-1", 500)),  # retry of a rejected Reserve
        cart("cart-1", ("sku-a", "dc-1", 9)),  # conflict
        Commit("res-run-0", "commit-0"), Release("res-run-3", "release-3", "abandoned"),
        move("sale-1", MT.SALE, "sku-c", 1), move("sale-1", MT.SALE, "sku-c", 2),
        Commit("res-late", "commit-late"),  # past due, not yet swept
        Commit("res-cart-4", "commit-cart-4", "order-c4"), Commit("res-run-5", "c5"),
        Release("res-run-0", "cancel-0"), Release("res-run-1", "release-shipped"),
        Commit("res-run-3", "commit-released"), Release("res-cart-2", "release-cart-2"),
        move("ship-4", MT.SHIPMENT, "sku-b", 1, order_ref="order-cart"),
        move("ship-5", MT.SHIPMENT, "sku-c", 2, location="store-2", order_ref="order-c4"),
        *[cart(f"new-{n}", ("sku-a", "dc-1", 2)) for n in range(30)],
        move("count-late", MT.CYCLE_COUNT, "sku-a", 35, occurred_at_unix_ms=T0 + 30_000),
        move("count-older", MT.CYCLE_COUNT, "sku-a", 99, occurred_at_unix_ms=T0 + 5_000),
        GetAvailability(tuple(ItemRef(s, loc) for s in SKUS for loc in LOCATIONS)),
    ]),
    (T0 + 10 * 3_600_000, [Expire()]),  # far ahead: every hold, key and finished one goes
    (T0 + 10 * 3_600_000 + 1, [
        move("ship-1", MT.SHIPMENT, "sku-a", 1, reservation_id="res-run-1"),
        Commit("res-run-1", "commit-1", "order-x"), Release("res-cart-1", "rel-after"),
        cart("run-0", ("sku-a", "dc-1", 1)),
        move("sale-3", MT.SALE, "sku-b", 2),  # occurs after the count below, so stays on top
        move("count-3", MT.CYCLE_COUNT, "sku-b", 7, occurred_at_unix_ms=T0 + 10 * 3_600_000),
    ]),
]


def built_state() -> PartitionState:
    state = PartitionState(CONFIG)
    state.load_items([s for s in SKUS for _ in LOCATIONS], list(LOCATIONS) * len(SKUS),
                     [40, 5, 30, 0, 10, 4])
    for now_ms, batch in HISTORY:
        state.apply(batch, now_ms)
    return state


def full_view(state: PartitionState) -> tuple:
    """observable() plus what only later commands reveal: shipped units, due times, keys."""
    book = state.reservations
    details = sorted((r.reservation_id, r.shipped, r.expires_at_ms, r.order_ref, r.channel)
                     for r in book.all())
    orders = {order: list(ids) for order, ids in book.by_order.items()}
    keys = [key for key, *_ in state.idempotency.items_in_order()]
    return observable(state), details, orders, keys, state.seq


def every_row(state: PartitionState) -> list[tuple[str, str]]:
    items = state.items
    return [(items.row_sku[row], items.locations[int(items.row_location[row])])
            for row in range(items.size)]


def test_snapshot_copy_answers_every_query_identically():
    """After load(dump(state)) every row, query and the sequence number read the same."""
    state = built_state()
    copy = snapshot.load(snapshot.dump(state))
    rows = every_row(state)
    assert len(rows) == 7 and every_row(copy) == rows
    assert all(copy.quantities_of(*row) == state.quantities_of(*row) for row in rows)
    probe = [*rows, ("ghost", "dc-1"), ("sku-a", "nowhere")]
    assert copy.query(probe) == state.query(probe)
    assert (copy.seq, copy.config) == (state.seq, state.config)
    assert full_view(copy) == full_view(state)


def test_snapshot_copy_evolves_identically_under_further_commands():
    """The same further batches give the original and the copy identical results and state."""
    state = built_state()
    copy = snapshot.load(snapshot.dump(state))
    for now_ms, batch in FURTHER:
        assert list(copy.apply(batch, now_ms)) == list(state.apply(batch, now_ms))
        assert full_view(copy) == full_view(state)


def test_snapshot_of_a_copy_is_the_same_bytes():
    """Dumping a loaded snapshot gives back the bytes it was loaded from."""
    data = snapshot.dump(built_state())
    assert snapshot.dump(snapshot.load(data)) == data


def test_snapshot_load_under_another_config_keeps_the_history_ring_size():
    """A retuned config applies on load, except the ring size, which is part of the data."""
    state = built_state()
    config = PartitionConfig(hold_ttl_seconds_default=5, movement_history_entries=8)
    copy = snapshot.load(snapshot.dump(state), config)
    assert copy.config.hold_ttl_seconds_default == 5
    assert copy.config.movement_history_entries == CONFIG.movement_history_entries
    assert full_view(copy) == full_view(state)


def test_snapshot_load_of_another_format_version_raises():
    """A snapshot written in another format is refused rather than misread."""
    data = msgpack.unpackb(snapshot.dump(built_state()), raw=False, strict_map_key=False)
    data["version"] = snapshot.FORMAT_VERSION + 1
    with pytest.raises(ValueError, match="format"):
        snapshot.load(msgpack.packb(data, use_bin_type=True))
