"""A reservation's life over gRPC: hold, commit, ship, release, expire, and carts that span
partitions, held all-or-nothing or partially."""

from __future__ import annotations

import time

import grpc
from inventory.v1 import availability_pb2 as pb

from engine.ids import ReservationIdSource
from tests.integration.serving import (
    HELD,
    LOC,
    PARTIALLY_HELD,
    REJECTED,
    RPC_TIMEOUT_S,
    availability,
    commit,
    quantities,
    receive,
    refusal_of,
    release,
    reserve,
    reserved_of,
    sku_on,
    unique,
    wait_until,
)

SERVE_PARTITIONS = 3
# DESIGN: a hold is swept within 1 s of falling due; a 1 s hold is gone well within this.
EXPIRED_WITHIN_S = 2.5


async def ship(stub, sku: str, quantity: int, reservation_id: str) -> None:
    movement = pb.Movement(event_id=unique("shipment"), source="wms",
                           type=pb.MOVEMENT_TYPE_SHIPMENT, sku=sku, location=LOC,
                           quantity=quantity, reservation_id=reservation_id)
    response = await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=[movement]),
                                         timeout=RPC_TIMEOUT_S)
    assert [r.code for r in response.results] == [pb.MOVEMENT_CODE_APPLIED], response


def cart_skus(prefix: str) -> tuple[str, str]:
    """Two fresh SKUs on different partitions: a cart of both spans two partitions."""
    return sku_on(0, SERVE_PARTITIONS, prefix), sku_on(2, SERVE_PARTITIONS, prefix)


async def test_commit_ship_and_release_follow_a_reservation_through_its_life(stub):
    """A hold commits (reserved becomes committed), ships (on hand and committed drop), and a
    second hold released gives its units back."""
    sku = unique("life")
    await receive(stub, sku, 10)
    held = await reserve(stub, unique("order-1"), (sku, 4))
    assert held.status == HELD and held.reservation_id
    item = await quantities(stub, sku)
    assert (item.on_hand, item.reserved, item.committed, item.available_to_sell) == (10, 4, 0, 6)

    committed = await commit(stub, held.reservation_id)
    assert (committed.reservation_id, committed.state) == (held.reservation_id,
                                                           pb.RESERVATION_STATE_COMMITTED)
    item = await quantities(stub, sku)
    assert (item.on_hand, item.reserved, item.committed, item.available_to_sell) == (10, 0, 4, 6)

    await ship(stub, sku, 4, held.reservation_id)
    item = await quantities(stub, sku)
    assert (item.on_hand, item.reserved, item.committed, item.available_to_sell) == (6, 0, 0, 6)

    second = await reserve(stub, unique("order-2"), (sku, 3))
    assert second.status == HELD
    assert (await quantities(stub, sku)).reserved == 3
    released = await release(stub, second.reservation_id)
    assert (released.reservation_id, released.state) == (second.reservation_id,
                                                         pb.RESERVATION_STATE_RELEASED)
    item = await quantities(stub, sku)
    assert (item.on_hand, item.reserved, item.committed, item.available_to_sell) == (6, 0, 0, 6)


async def test_commit_unknown_reservation_is_not_found_and_changes_nothing(stub):
    """A commit naming no reservation answers NOT_FOUND, whatever the id looks like."""
    sku = unique("unknown")
    await receive(stub, sku, 5)
    held = await reserve(stub, unique("order"), (sku, 2))
    before = await availability(stub, sku)
    for reservation_id in (ReservationIdSource().mint(0), ReservationIdSource().mint(0, 2),
                           ReservationIdSource().mint(7), "no-such-reservation"):
        refusal = await refusal_of(commit(stub, reservation_id))
        assert refusal.code() is grpc.StatusCode.NOT_FOUND, (reservation_id, refusal)
    assert await availability(stub, sku) == before
    assert (await commit(stub, held.reservation_id)).state == pb.RESERVATION_STATE_COMMITTED


async def test_reserve_with_ttl_expires_and_commit_after_expiry_is_refused(stub):
    """A 1 s hold gives its units back on its own, and committing it afterwards answers
    FAILED_PRECONDITION without changing anything."""
    sku = unique("ttl")
    await receive(stub, sku, 5)
    sent_at = time.monotonic()
    held = await reserve(stub, unique("order"), (sku, 2), ttl_seconds=1)
    assert held.status == HELD
    assert (await quantities(stub, sku)).reserved == 2
    remaining_s = EXPIRED_WITHIN_S - (time.monotonic() - sent_at)
    await wait_until(lambda: _reserved_is(stub, sku, 0), remaining_s,
                     f"the 1 s hold on {sku} expired")
    item = await quantities(stub, sku)
    assert (item.on_hand, item.reserved, item.available_to_sell) == (5, 0, 5)
    before = await availability(stub, sku)
    refusal = await refusal_of(commit(stub, held.reservation_id))
    assert refusal.code() is grpc.StatusCode.FAILED_PRECONDITION, refusal
    assert await availability(stub, sku) == before


async def _reserved_is(stub, sku: str, reserved: int) -> bool:
    return (await quantities(stub, sku)).reserved == reserved


async def test_reserve_cart_across_partitions_that_cannot_be_filled_holds_nothing(stub):
    """A cart spanning two partitions with one line short is REJECTED and leaves nothing
    held on either partition."""
    left, right = cart_skus("unfilled")
    await receive(stub, left, 5)
    await receive(stub, right, 2)
    before = await availability(stub, left, right)
    answer = await reserve(stub, unique("cart"), (left, 3), (right, 3))
    assert (answer.status, answer.reservation_id) == (REJECTED, "")
    assert [(line.sku, line.reserved) for line in answer.lines] == [(left, 0), (right, 0)]
    assert answer.lines[1].code == pb.LINE_CODE_INSUFFICIENT_AVAILABLE
    assert await availability(stub, left, right) == before
    assert await reserved_of(stub, left, right) == [0, 0]


async def test_reserve_cart_across_partitions_with_allow_partial_holds_and_commits_what_it_can(
        stub):
    """The same short cart with allow_partial is PARTIALLY_HELD, and committing its id
    commits exactly what was held on both partitions."""
    left, right = cart_skus("partial")
    await receive(stub, left, 5)
    await receive(stub, right, 2)
    answer = await reserve(stub, unique("cart"), (left, 3), (right, 3), allow_partial=True)
    assert answer.status == PARTIALLY_HELD and answer.reservation_id
    assert [line.reserved for line in answer.lines] == [3, 2]
    assert await reserved_of(stub, left, right) == [3, 2]
    committed = await commit(stub, answer.reservation_id)
    assert committed.state == pb.RESERVATION_STATE_COMMITTED
    items = await availability(stub, left, right)
    assert [(i.reserved, i.committed, i.available_to_sell) for i in items] == [(0, 3, 2),
                                                                              (0, 2, 0)]


async def test_reserve_cart_with_allow_partial_and_one_partition_empty_commits_the_rest(stub):
    """A partial cart where one partition holds nothing commits the part that was held."""
    left, right = cart_skus("half")
    await receive(stub, left, 5)
    answer = await reserve(stub, unique("cart"), (left, 2), (right, 1), allow_partial=True)
    assert answer.status == PARTIALLY_HELD and answer.reservation_id
    assert [line.reserved for line in answer.lines] == [2, 0]
    assert answer.lines[1].code == pb.LINE_CODE_UNKNOWN_ITEM
    assert (await commit(stub, answer.reservation_id)).state == pb.RESERVATION_STATE_COMMITTED
    items = await availability(stub, left, right)
    assert [(i.reserved, i.committed) for i in items] == [(0, 2), (0, 0)]
    released = await release(stub, answer.reservation_id)
    assert released.state == pb.RESERVATION_STATE_RELEASED
    assert [i.committed for i in await availability(stub, left, right)] == [0, 0]


async def test_release_cart_across_partitions_releases_every_part(stub):
    """A fillable cart spanning two partitions is HELD under one id, and releasing that id
    gives every part back."""
    left, right = cart_skus("cart")
    await receive(stub, left, 5)
    await receive(stub, right, 5)
    answer = await reserve(stub, unique("cart"), (left, 2), (right, 4))
    assert answer.status == HELD and answer.reservation_id
    assert [(line.reserved, line.code) for line in answer.lines] == [(2, pb.LINE_CODE_OK),
                                                                     (4, pb.LINE_CODE_OK)]
    assert answer.expires_at_unix_ms > time.time() * 1000 + 60_000  # the default TTL, confirmed
    assert await reserved_of(stub, left, right) == [2, 4]
    released = await release(stub, answer.reservation_id)
    assert (released.reservation_id, released.state) == (answer.reservation_id,
                                                         pb.RESERVATION_STATE_RELEASED)
    items = await availability(stub, left, right)
    assert [(i.reserved, i.available_to_sell) for i in items] == [(0, 5), (0, 5)]
