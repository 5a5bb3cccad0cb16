"""Journaled partition actors against real Redis: kill -9 under load, Redis stopped and back,
and a zombie actor fenced off."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import ray
from inventory.v1 import availability_pb2 as pb

from engine.config import DurabilityConfig
from engine.embedded_redis import start_embedded_redis
from engine.journal_store import JournalStore, connect
from engine.model import GetAvailability, ItemRef, MovementCode, Unavailable
from engine.partition_actor import PartitionActor, start_partitions
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS
from engine.routing import partition_of
from gateway.client import AvailabilityClient
from gateway.partitions import RayPartitions
from tests.integration.conftest import REDIS_URL
from tests.integration.durability import HoldLoad, audit
from tests.integration.serving import LOC, sku_on, wait_until
from tests.integration.test_partition_actors import hold, receipt, restarted

STOCK = 1_000_000
RESTARTED_WITHIN_S = 60.0


async def stocked_client(target: str, skus: list[str]) -> AvailabilityClient:
    """A batching client to `target`, with STOCK units of every SKU received."""
    client = AvailabilityClient(target)
    await client.apply_movements([pb.Movement(
        event_id=f"stock-{sku}", source="wms", type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku,
        location=LOC, quantity=STOCK) for sku in skus])
    return client


async def test_actor_killed_9_under_load_keeps_every_acknowledged_hold_exactly_once(
        actors, gateway):
    """kill -9 of one partition's process mid-load: after Ray restarts it from the journal,
    every acknowledged hold is there with its id, and no hold is there twice."""
    _, handles = actors(2, journal=True)
    client = await stocked_client(await gateway(handles),
                                  skus := [sku_on(p % 2, 2, "killed") for p in range(4)])
    load = HoldLoad(client, skus)
    running = asyncio.create_task(load.run())
    try:
        await load.wait_for(300)
        first = await handles[0].ready.remote()
        os.kill(first["pid"], signal.SIGKILL)

        await restarted(handles[0], first["pid"], RESTARTED_WITHIN_S)
        after = len(load.acknowledged)
        await load.wait_for(after + 300)
    finally:
        load.stop()
        await running
    assert load.refusals.keys() <= {"UNAVAILABLE"}
    await audit(load, STOCK)
    await client.close()


async def test_redis_stopped_and_back_under_load_fails_fast_then_resumes_by_itself(
        actors, gateway, tmp_path):
    """With Redis down, holds fail fast with UNAVAILABLE and reads still answer; when it is
    back the partitions resume on their own, and nothing acknowledged was lost or doubled."""
    server = start_embedded_redis(tmp_path)
    connect(server.url).config_set("appendfsync", "always")  # nothing acknowledged is lost
    _, handles = actors(2, journal=True, redis_url=server.url)
    client = await stocked_client(await gateway(handles),
                                  skus := [sku_on(p % 2, 2, "outage") for p in range(4)])
    load = HoldLoad(client, skus)
    running = asyncio.create_task(load.run())
    try:
        await load.wait_for(300)
        server.stop()
        refused_before = load.refusals.get("UNAVAILABLE", 0)
        started = time.monotonic()
        await wait_until(lambda: load.refusals.get("UNAVAILABLE", 0) > refused_before + 50,
                         30, "holds are refused UNAVAILABLE while Redis is down")
        refused_within_s = time.monotonic() - started
        rows = await client.get_availability([(sku, LOC) for sku in skus], timeout=10)
        assert all(row.on_hand == STOCK for row in rows)  # reads answer from memory

        server = start_embedded_redis(tmp_path)
        after = len(load.acknowledged)
        await load.wait_for(after + 300)
        load.stop()
        await running
        assert refused_within_s < 10  # fail fast, not after long timeouts
        await audit(load, STOCK)
    finally:
        load.stop()
        await running
        await client.close()
        server.stop()


async def test_zombie_actor_of_a_partition_can_never_append(actors):
    """A second actor for the same partition fences the first: the old one's changes are
    refused unapplied and never reach the journal; the new one has the old one's state."""
    namespace, (old,) = actors(1, journal=True)
    sku = sku_on(0, 1, "zombie")
    [received] = await RayPartitions([old]).apply(0, [receipt(sku, 10)])
    assert received.code is MovementCode.APPLIED
    store = JournalStore(connect(REDIS_URL), partition_of(sku, DEFAULT_VIRTUAL_PARTITIONS),
                         namespace)
    seq_before = store.last_seq()

    durability = DurabilityConfig(redis_url=REDIS_URL, key_prefix=namespace)
    new = PartitionActor.options(name="zombie-successor", namespace=namespace, num_cpus=0,
                                 max_restarts=0).remote(0, None, durability)
    try:
        status = await new.ready.remote()
        assert (status["items"], status["seq"]) == (1, seq_before)
        [refused] = await RayPartitions([old]).apply(0, [hold(sku, 3)])
        assert isinstance(refused, Unavailable) and "fenced" in refused.reason.lower()
        assert store.last_seq() == seq_before
        [again] = await RayPartitions([old]).apply(0, [hold(sku, 3)])
        assert isinstance(again, Unavailable)  # fenced for good, not only once
        [held] = await RayPartitions([new]).apply(0, [hold(sku, 3)])
        assert held.lines[0].reserved == 3
        assert store.last_seq() == seq_before + 1
    finally:
        ray.kill(new, no_restart=True)


def test_journal_of_n_partitions_is_not_served_by_another_count(actors):
    """Restarting on a journal with another virtual partition count is refused before any
    actor starts: its SKUs would be recovered into partitions that never see them."""
    namespace, _ = actors(2, journal=True)
    durability = DurabilityConfig(redis_url=REDIS_URL, key_prefix=namespace)
    with pytest.raises(RuntimeError, match="written by 64 virtual partitions"):
        start_partitions(2, f"{namespace}-other", durability, virtual_partitions=32)


async def test_actor_snapshots_by_compactor_trims_its_journal_and_recovers_from_it(actors):
    """An actor past its snapshot threshold has a compactor store a snapshot and trim the
    journal behind it; killed, it comes back from snapshot plus journal, state intact."""
    namespace, (handle,) = actors(1, journal=True, snapshot_every_commands=50)
    sku = sku_on(0, 1, "compacted")
    partitions = RayPartitions([handle])
    await partitions.apply(0, [receipt(sku, 1_000)])
    for _ in range(12):
        await partitions.apply(0, [hold(sku, 1) for _ in range(10)])
    store = JournalStore(connect(REDIS_URL), partition_of(sku, DEFAULT_VIRTUAL_PARTITIONS),
                         namespace)

    async def compacted():
        status = await handle.ready.remote()
        return status["snapshots_taken"] >= 1 and status

    first = await wait_until(compacted, RESTARTED_WITHIN_S, "a snapshot was taken")
    assert store.snapshot_seq() >= 50
    assert store.journal_length() < 121  # trimmed behind the snapshot
    os.kill(first["pid"], signal.SIGKILL)

    status = await restarted(handle, first["pid"], RESTARTED_WITHIN_S)
    assert status["seq"] == first["seq"] == 121
    [item] = (await partitions.apply(0, [GetAvailability((ItemRef(sku, LOC),))]))[0].items
    assert (item.on_hand, item.reserved) == (1_000, 120)
