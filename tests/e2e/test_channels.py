"""Channels against the real serve: per-channel figures, quotas under concurrency,
reserve-anywhere, unknown channels refused, and WatchAvailability with resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError
from tests.integration.serving import (
    RPC_TIMEOUT_S,
    availability,
    receive,
    refusal_of,
    reserve_request,
    unique,
)

SERVE_ARGS = ("--channels", str(Path(__file__).with_name("channels.toml")))
WATCH_TIMEOUT_S = 30.0


async def channel_figure(stub, sku: str, channel: str, location: str = "dc-1") -> int:
    request = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location=location)],
                                        channel=channel)
    return (await stub.GetAvailability(request, timeout=RPC_TIMEOUT_S)).items[0].available_to_sell


async def test_each_channel_sees_its_own_figure(stub):
    """The web channel's buffer and the marketplace's 20% quota shape what each is shown."""
    sku = unique("figures")
    await receive(stub, sku, 100)
    assert await channel_figure(stub, sku, "") == 100
    assert await channel_figure(stub, sku, "web") == 98
    assert await channel_figure(stub, sku, "market") == 20


async def test_unknown_channel_is_refused_and_nothing_changes(stub):
    """A Reserve naming a channel the rules do not know is INVALID_ARGUMENT, holding nothing."""
    sku = unique("unknown")
    await receive(stub, sku, 5)
    error = await refusal_of(stub.Reserve(reserve_request(unique("k"), (sku, 1),
                                                          channel="nowhere"),
                                          timeout=RPC_TIMEOUT_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "channel" in error.details()
    assert (await availability(stub, sku))[0].reserved == 0


async def test_quota_holds_under_concurrency(stub):
    """Fifty concurrent marketplace holds of one unit: exactly its 20% share of 100 is held."""
    sku = unique("quota")
    await receive(stub, sku, 100)
    answers = await asyncio.gather(*(
        stub.Reserve(reserve_request(unique("m"), (sku, 1), channel="market"),
                     timeout=RPC_TIMEOUT_S) for _ in range(50)))
    held = sum(answer.status == pb.RESERVATION_STATUS_HELD for answer in answers)
    assert held == 20
    assert (await availability(stub, sku))[0].reserved == 20


async def test_reserve_anywhere_names_the_location_it_chose(stub):
    """A line without a location is held at the first location of the channel's priority
    with enough, and the answer names it."""
    sku = unique("anywhere")
    await receive(stub, sku, 3, location="store-9")
    await receive(stub, sku, 50, location="dc-1")
    request = pb.ReserveRequest(idempotency_key=unique("a"), channel="web", lines=[
        pb.ReserveLine(sku=sku, location="", quantity=2)])
    first = await stub.Reserve(request, timeout=RPC_TIMEOUT_S)
    assert first.status == pb.RESERVATION_STATUS_HELD
    assert first.lines[0].location == "dc-1"  # store-9 keeps its buffer of 2: only 1 to sell
    request.lines[0].quantity = 1
    request.idempotency_key = unique("b")
    second = await stub.Reserve(request, timeout=RPC_TIMEOUT_S)
    assert second.lines[0].location == "store-9"


async def next_update(updates) -> pb.AvailabilityUpdate:
    return await asyncio.wait_for(anext(updates), WATCH_TIMEOUT_S)


async def test_watch_snapshot_then_changes_then_resume(serve):
    """A watch opens with a snapshot, streams a change, and resumes after a reconnect."""
    sku = unique("watch")
    async with AvailabilityClient(serve.target) as client:
        await client.apply_movements([pb.Movement(
            event_id=unique("in"), source="erp", type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku,
            location="dc-1", quantity=10)])
        updates = client.watch(channel="web", skus=[sku])
        snapshot = [await next_update(updates) for _ in range(3)]
        assert [(u.kind, u.location, u.available_to_sell) for u in snapshot] == [
            (pb.UPDATE_KIND_SNAPSHOT, "dc-1", 8), (pb.UPDATE_KIND_SNAPSHOT, "", 8),
            (pb.UPDATE_KIND_SNAPSHOT_COMPLETE, "", 0)]
        await client.reserve([(sku, "dc-1", 3)], idempotency_key=unique("w"), channel="web")
        change = await next_update(updates)
        assert (change.kind, change.location, change.available_to_sell) == (
            pb.UPDATE_KIND_CHANGE, "dc-1", 5)
        last = await next_update(updates)  # the network figure
        await updates.aclose()
        await client.reserve([(sku, "dc-1", 1)], idempotency_key=unique("w"), channel="web")
        resumed = client.watch(channel="web", skus=[sku], resume_stream_id=last.stream_id,
                               resume_after_sequence=last.sequence)
        missed = await next_update(resumed)
        assert (missed.kind, missed.location, missed.available_to_sell) == (
            pb.UPDATE_KIND_CHANGE, "dc-1", 4)
        assert missed.sequence > last.sequence
        await resumed.aclose()


async def test_watch_of_an_unknown_channel_is_refused(serve):
    """WatchAvailability checks its channel like every other call."""
    async with AvailabilityClient(serve.target) as client:
        with pytest.raises(AvailabilityError) as refused:
            await next_update(client.watch(channel="nowhere"))
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_backorder_is_held_then_filled_by_a_receipt(stub):
    """A pre-order past stock is held as a backorder against incoming stock; the receipt
    turns it into an ordinary hold."""
    sku = unique("pre")
    await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=[pb.Movement(
        event_id=unique("po"), source="erp", type=pb.MOVEMENT_TYPE_INBOUND_EXPECTED, sku=sku,
        location="dc-1", quantity=5)]), timeout=RPC_TIMEOUT_S)
    answer = await stub.Reserve(reserve_request(unique("b"), (sku, 3), channel="preorder"),
                                timeout=RPC_TIMEOUT_S)
    assert answer.status == pb.RESERVATION_STATUS_HELD
    assert (answer.lines[0].code, answer.lines[0].backordered) == (pb.LINE_CODE_BACKORDERED, 3)
    item = (await availability(stub, sku))[0]
    assert (item.reserved, item.backordered, item.incoming) == (0, 3, 5)
    await receive(stub, sku, 5)
    item = (await availability(stub, sku))[0]
    assert (item.reserved, item.backordered, item.available_to_sell) == (3, 0, 2)
