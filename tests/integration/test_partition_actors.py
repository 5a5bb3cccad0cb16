"""Partition actors in Ray: found by name, batches applied in order and numbered, holds swept
by the actor itself, and an actor that dies is restarted with its state."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
import ray
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.config import DurabilityConfig, LaneLimits
from engine.model import (
    GetAvailability,
    ItemRef,
    MovementCode,
    MovementType,
    ReservationStatus,
    Reserve,
    ReserveLine,
)
from engine.model import Movement as MovementCommand
from engine.partition_actor import find_partitions, start_partitions
from gateway.lanes import PartitionLane
from gateway.partitions import RayPartitions
from tests.integration.serving import (
    LOC,
    RPC_TIMEOUT_S,
    quantities,
    receive,
    reserve,
    sku_on,
    stub_of,
    unique,
    wait_until,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
RESTARTED_WITHIN_S = 60.0
# DESIGN: a hold is swept within 1 s of falling due.
SWEPT_WITHIN_MS = 1_000


async def restarted(handle, old_pid: int, timeout_s: float) -> dict:
    """The `ready` status of `handle` once Ray has restarted it in a process other than
    `old_pid` and it has recovered."""
    async def new_process():
        status = await handle.ready.remote()
        return status["pid"] != old_pid and status

    return await wait_until(new_process, timeout_s, "the actor was restarted",
                            ignoring=(ray.exceptions.RayActorError,
                                      ray.exceptions.ActorUnavailableError))


def receipt(sku: str, quantity: int) -> MovementCommand:
    return MovementCommand(unique("receipt"), "wms", MovementType.RECEIPT, sku, LOC, quantity)


def hold(sku: str, quantity: int, **fields) -> Reserve:
    key = unique("hold")
    return Reserve(key, f"res-{key}", (ReserveLine(sku, LOC, quantity),), **fields)


async def apply(handle, *commands) -> list:
    """Send one batch to one actor the way the gateway does, and return its results."""
    return list(await RayPartitions([handle]).apply(0, commands))


async def read(handle, sku: str):
    """One SKU-location's quantities, read from the actor (a read sweeps nothing)."""
    [answer] = await apply(handle, GetAvailability((ItemRef(sku, LOC),)))
    return answer.items[0]


async def test_find_partitions_reaches_the_actors_started_under_their_names(actors):
    """Handles found by name in the namespace reach the very actors `start_partitions` made,
    and a second start under the same names is refused."""
    namespace, started = actors(2)
    found = find_partitions(2, namespace)
    sku = sku_on(1, 2, "named")  # on a virtual partition that actor 1 hosts
    [applied] = await apply(found[1], receipt(sku, 7))
    assert applied.code is MovementCode.APPLIED
    assert (await read(started[1], sku)).on_hand == 7
    assert [(await handle.ready.remote())["items"] for handle in started] == [0, 1]
    assert [(await handle.ready.remote())["partition"] for handle in found] == [0, 1]
    with pytest.raises(RuntimeError, match="already exists"):
        start_partitions(2, namespace, DurabilityConfig(journal=False))


async def test_apply_batches_through_a_lane_in_arrival_order_with_sequence_numbers(actors):
    """Commands queued on a partition's lane reach the actor batch after batch in the order
    they were queued, and each write takes the next sequence number (idle sweeps take none)."""
    _, (handle,) = actors(1)
    # Small batches, so the twenty holds below cross Ray as seven calls, one after another.
    lane = PartitionLane(functools.partial(RayPartitions([handle]).apply, 0),
                         LaneLimits(batch_commands_max=3))
    sku = unique("ordered")
    received, _ = await asyncio.gather(lane.submit(receipt(sku, 10)),
                                       lane.submit(GetAvailability((ItemRef(sku, LOC),))))
    assert received.code is MovementCode.APPLIED
    seq_before = (await handle.ready.remote())["seq"]
    answers = await asyncio.gather(*(lane.submit(hold(sku, 1)) for _ in range(20)))
    assert [answer.status for answer in answers] == (
        [ReservationStatus.HELD] * 10 + [ReservationStatus.REJECTED] * 10)
    seq_after = (await handle.ready.remote())["seq"]
    assert seq_before >= 1
    assert seq_after - seq_before == 20
    assert (await read(handle, sku)).reserved == 10


async def test_partition_actor_sweeps_a_due_hold_within_a_second(actors):
    """A 1 s hold is expired by the actor's own sweep within 1 s of its due time, with no
    command sent to make it happen."""
    _, (handle,) = actors(1)
    sku = unique("swept")
    _, held = await apply(handle, receipt(sku, 5), hold(sku, 2, ttl_seconds=1))
    assert held.status is ReservationStatus.HELD
    due_ms = held.expires_at_unix_ms

    async def swept_at_ms() -> int | None:
        return time.time_ns() // 1_000_000 if (await read(handle, sku)).reserved == 0 else None

    seen_ms = await wait_until(swept_at_ms, 10, "the actor's sweep expired the hold",
                               interval_s=0.02)
    assert seen_ms - due_ms <= SWEPT_WITHIN_MS
    item = await read(handle, sku)
    assert (item.on_hand, item.reserved, item.available_to_sell) == (5, 0, 5)


async def test_partition_actor_killed_is_restarted_recovered_and_health_returns_to_serving(
        actors, gateway, channel_to):
    """An actor killed with a restart allowed comes back with its state from the journal,
    answers `ready`, and the gateway's health says SERVING again and serves its SKUs."""
    _, handles = actors(2, journal=True)
    target = await gateway(handles)
    channel = channel_to(target)
    health, stub = health_pb2_grpc.HealthStub(channel), stub_of(channel)
    sku = sku_on(0, 2, "restarted")
    await receive(stub, sku, 5)
    first = await handles[0].ready.remote()

    ray.kill(handles[0], no_restart=False)

    status = await restarted(handles[0], first["pid"], RESTARTED_WITHIN_S)
    assert (status["items"], status["seq"]) == (first["items"], first["seq"])
    assert status["epoch"] == first["epoch"] + 1

    async def serving() -> bool:
        request = health_pb2.HealthCheckRequest(service="inventory.v1.AvailabilityService")
        return (await health.Check(request, timeout=RPC_TIMEOUT_S)).status == SERVING

    await wait_until(serving, RESTARTED_WITHIN_S, "health is SERVING again")
    assert (await quantities(stub, sku)).on_hand == 5
    assert (await reserve(stub, unique("after-restart"), (sku, 2))).lines[0].reserved == 2
