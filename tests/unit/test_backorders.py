"""Backorders: holds past available-to-sell against incoming stock, filled by receipts in order."""

from __future__ import annotations

from engine import snapshot
from engine.channels import DEFAULT, Channel, ChannelRules
from engine.config import PartitionConfig
from engine.model import (
    Commit,
    GetAvailability,
    ItemRef,
    LineCode,
    Release,
    ReservationStatus,
    SetChannelRules,
)
from engine.model import MovementType as MT
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import apply_one, apply_refused, move, reserve

SKU, LOC = "pre-1", "dc-1"
RULES = ChannelRules((Channel(DEFAULT),
                      Channel("web", backorder_skus=("pre-*",), backorder_limit=10)))


def stocked(on_hand: int, incoming: int) -> PartitionState:
    state = PartitionState(PartitionConfig(channels=RULES))
    apply_one(state, SetChannelRules(RULES.to_json()))
    apply_one(state, move("seed", MT.RECEIPT, on_hand, SKU, LOC))
    apply_one(state, move("po", MT.INBOUND_EXPECTED, incoming, SKU, LOC))
    return state


def quantities(state: PartitionState) -> dict:
    item = apply_one(state, GetAvailability((ItemRef(SKU, LOC),))).items[0]
    return {"reserved": item.reserved, "committed": item.committed,
            "backordered": item.backordered, "available_to_sell": item.available_to_sell}


def test_reserve_past_available_is_backordered_against_incoming():
    """A line the stock cannot meet is held as a backorder; available-to-sell is unchanged."""
    state = stocked(on_hand=2, incoming=8)
    result = apply_one(state, reserve("b1", (SKU, LOC, 5), channel="web"))
    assert result.status is ReservationStatus.HELD
    assert (result.lines[0].code, result.lines[0].reserved, result.lines[0].backordered) == (
        LineCode.BACKORDERED, 0, 5)
    assert quantities(state) == {"reserved": 0, "committed": 0, "backordered": 5,
                                 "available_to_sell": 2}


def test_backorders_stop_at_incoming_and_the_limit():
    """No more is promised than is expected, nor than the channel's limit."""
    state = stocked(on_hand=0, incoming=6)
    assert apply_one(state, reserve("b1", (SKU, LOC, 4), channel="web")).lines[0].backordered == 4
    refused = apply_refused(state, reserve("b2", (SKU, LOC, 3), channel="web"))
    assert refused.status is ReservationStatus.REJECTED  # 4 + 3 is more than 6 incoming
    assert refused.lines[0].code is LineCode.INSUFFICIENT_AVAILABLE
    roomy = stocked(on_hand=0, incoming=50)
    assert apply_one(roomy, reserve("b1", (SKU, LOC, 10), channel="web")).lines[0].backordered
    assert apply_refused(roomy, reserve("b2", (SKU, LOC, 1), channel="web")).status \
        is ReservationStatus.REJECTED  # the limit is 10


def test_default_channel_denies_backorders():
    """Without a rule allowing them, a Reserve past available-to-sell is rejected as before."""
    state = stocked(on_hand=1, incoming=8)
    assert apply_refused(state, reserve("d1", (SKU, LOC, 3))).status is ReservationStatus.REJECTED


def test_receipt_fills_backorders_in_order_of_arrival():
    """Received stock turns the oldest backorders into holds first; a big early one is not
    overtaken by a smaller later one."""
    state = stocked(on_hand=0, incoming=10)
    first = apply_one(state, reserve("b1", (SKU, LOC, 4), channel="web"))
    second = apply_one(state, reserve("b2", (SKU, LOC, 1), channel="web"))
    apply_one(state, Commit(second.reservation_id, "c2"))
    apply_one(state, move("r1", MT.RECEIPT, 3, SKU, LOC))
    assert quantities(state) == {"reserved": 0, "committed": 0, "backordered": 5,
                                 "available_to_sell": 3}  # 3 cannot fill the first (4)
    apply_one(state, move("r2", MT.RECEIPT, 2, SKU, LOC))
    assert quantities(state) == {"reserved": 4, "committed": 1, "backordered": 0,
                                 "available_to_sell": 0}
    assert state.reservations.get(first.reservation_id).backordered == [False]


def test_released_backorder_is_never_filled():
    """A backorder given back stops counting, and a later receipt skips it."""
    state = stocked(on_hand=0, incoming=10)
    held = apply_one(state, reserve("b1", (SKU, LOC, 4), channel="web"))
    apply_one(state, Release(held.reservation_id, "rel"))
    apply_one(state, move("r1", MT.RECEIPT, 5, SKU, LOC))
    assert quantities(state) == {"reserved": 0, "committed": 0, "backordered": 0,
                                 "available_to_sell": 5}


def test_snapshot_keeps_backorders_and_their_order():
    """A restored partition fills the same backorders in the same order."""
    state = stocked(on_hand=0, incoming=10)
    for key, units in (("b1", 4), ("b2", 1)):
        apply_one(state, reserve(key, (SKU, LOC, units), channel="web"))
    restored = snapshot.load(snapshot.dump(state), PartitionConfig())
    assert quantities(restored) == quantities(state)
    for partition in (state, restored):
        apply_one(partition, move("r1", MT.RECEIPT, 4, SKU, LOC))
    assert quantities(restored) == quantities(state) == {
        "reserved": 4, "committed": 0, "backordered": 1, "available_to_sell": 0}
