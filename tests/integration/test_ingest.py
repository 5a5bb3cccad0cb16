"""Ingest workers on real Redis and Ray: every movement applied once, garbage dead-lettered,
and entries left by a dead worker claimed and finished."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
import redis.asyncio as aioredis
from google.protobuf import json_format
from inventory.v1 import availability_pb2 as pb

from engine.config import GatewayConfig
from engine.model import GetAvailability, ItemRef
from gateway.ingest import IngestConfig, IngestWorker, ensure_group
from gateway.partitions import RayPartitions
from gateway.router import Router
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import LOC, wait_until

SKUS = [f"ingest-sku-{n}" for n in range(20)]
DEADLINE_S = 120.0


@pytest.fixture
async def redis_client():
    client = aioredis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def streams(redis_client):
    """The pinned stream names, made unique to this test; deleted afterwards."""
    suffix = uuid.uuid4().hex[:10]
    config = IngestConfig(stream=f"test:{suffix}:events", group="availability-ingest",
                          dead_letters=f"test:{suffix}:events:dlq", block_ms=50,
                          claim_idle_ms=200, claim_interval_s=0.1)
    yield config
    await redis_client.delete(config.stream, config.dead_letters)


def receipt(event_id: str, sku: str, quantity: int) -> pb.Movement:
    return pb.Movement(event_id=event_id, source="wms", type=pb.MOVEMENT_TYPE_RECEIPT,
                       sku=sku, location=LOC, quantity=quantity)


def garbage(rng: random.Random, n: int) -> dict[str, bytes]:
    """An entry that can never be applied, of one of the kinds sources really send."""
    kind = n % 4
    if kind == 0:
        return {"movement": rng.randbytes(24)}
    if kind == 1:
        return {"json": b"{not json"}
    if kind == 2:
        return {"movement": receipt(f"bad-version-{n}", SKUS[0], 1).SerializeToString(),
                "schema_version": b"9"}
    return {"movement": receipt(f"no-sku-{n}", "", 1).SerializeToString()}


async def on_hand(router: Router, skus: list[str]) -> dict[str, int]:
    answer = await router.get_availability(GetAvailability(tuple(ItemRef(s, LOC) for s in skus)))
    return {item.sku: item.on_hand for item in answer.items}


async def test_ten_thousand_events_with_redeliveries_and_garbage_apply_exactly_once(
        actors, redis_client, streams):
    """10,000 events, 10% of them posted twice and 2% garbage: every good movement counts
    once, every garbage entry is in the DLQ with a reason, and nothing stays pending."""
    _, handles = actors(2, journal=True)
    router = Router(RayPartitions(handles), GatewayConfig())
    rng, expected = random.Random(7), dict.fromkeys(SKUS, 0)
    entries, garbage_count = [], 0
    for n in range(10_000):
        if rng.random() < 0.02:
            entries.append(garbage(rng, n))
            garbage_count += 1
            continue
        sku, quantity = rng.choice(SKUS), rng.randint(1, 5)
        movement = receipt(f"event-{n}", sku, quantity)
        expected[sku] += quantity
        entry = ({"json": json_format.MessageToJson(movement).encode()} if n % 3 == 0
                 else {"movement": movement.SerializeToString()})
        entries.append(entry)
        if rng.random() < 0.10:
            entries.append(entry)  # a redelivery by the source
    async with redis_client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(streams.stream, entry)
        await pipe.execute()

    worker = IngestWorker(redis_client, router, config=streams)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: worker.stats.applied + worker.stats.duplicates
                         + worker.stats.dead_lettered == len(entries), DEADLINE_S,
                         "every entry handled")
    finally:
        stop.set()
        await running
    assert worker.stats.dead_lettered == garbage_count
    assert worker.stats.applied == len(entries) - garbage_count - worker.stats.duplicates
    assert await on_hand(router, SKUS) == expected
    letters = await redis_client.xrange(streams.dead_letters)
    assert len(letters) == garbage_count
    assert all(fields[b"reason"] for _, fields in letters)
    assert (await redis_client.xpending(streams.stream, streams.group))["pending"] == 0


async def test_entries_of_a_dead_worker_are_claimed_and_applied_once(
        actors, redis_client, streams):
    """A worker that read entries and died before acknowledging them leaves them pending;
    another worker claims them after the idle time and applies each exactly once."""
    _, handles = actors(2, journal=True)
    router = Router(RayPartitions(handles), GatewayConfig())
    for n in range(200):
        await redis_client.xadd(streams.stream, {
            "movement": receipt(f"claimed-{n}", SKUS[n % 4], 1).SerializeToString()})
    await ensure_group(redis_client, streams)
    # A worker named "dead" reads 150 entries and is killed before applying any.
    read = await redis_client.xreadgroup(streams.group, "dead", {streams.stream: ">"},
                                         count=150)
    assert sum(len(entries) for _, entries in read) == 150

    survivor = IngestWorker(redis_client, router, config=streams, name="survivor")
    stop = asyncio.Event()
    running = asyncio.create_task(survivor.run(stop))
    try:
        await wait_until(lambda: survivor.stats.applied == 200, DEADLINE_S,
                         "the survivor applied every entry")
        await wait_until(lambda: _pending(redis_client, streams), DEADLINE_S,
                         "nothing is pending")
    finally:
        stop.set()
        await running
    assert survivor.stats.duplicates == 0
    assert await on_hand(router, SKUS[:4]) == dict.fromkeys(SKUS[:4], 50)


async def _pending(client: aioredis.Redis, streams: IngestConfig) -> bool:
    return (await client.xpending(streams.stream, streams.group))["pending"] == 0
