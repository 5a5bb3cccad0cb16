"""Redis ACL users in the URL: partitions journal as their own user, ingest reads the events
stream as another, and a source that may only XADD can do nothing else."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import redis.asyncio as aioredis
from inventory.v1 import availability_pb2 as pb

from engine.config import GatewayConfig
from engine.journal_store import connect
from engine.model import GetAvailability, ItemRef
from engine.partition_host import PartitionHost
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS
from engine.routing import partition_of
from gateway.ingest import IngestConfig, IngestWorker
from gateway.partitions import LocalPartitions
from gateway.router import Router
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import LOC, stub_of, unique, wait_until

DEADLINE_S = 60.0
# What an ingest worker runs on its streams (README, "Security"), and what a source runs.
INGEST_COMMANDS = ("+xreadgroup", "+xack", "+xadd", "+xgroup|create", "+xautoclaim",
                   "+xpending", "+multi", "+exec", "+ping")
SOURCE_COMMANDS = ("+xadd", "+ping")


def _tcp_redis() -> bool:
    return urlsplit(REDIS_URL).scheme in ("redis", "rediss")


pytestmark = pytest.mark.skipif(not _tcp_redis(), reason="ACL users need a TCP test Redis")


@pytest.fixture
def acl_user():
    """`acl_user(*rules)` makes a Redis ACL user and returns its URL; all are deleted after."""
    admin = redis.Redis.from_url(REDIS_URL)
    made: list[str] = []

    def make(*rules: str) -> str:
        name, password = f"test-{uuid.uuid4().hex[:10]}", secrets.token_hex(16)
        admin.acl_setuser(name, enabled=True, passwords=[f"+{password}"], reset_keys=True,
                          reset_channels=True)
        admin.execute_command("ACL", "SETUSER", name, "resetkeys", "-@all", *rules)
        made.append(name)
        parts = urlsplit(REDIS_URL)
        return urlunsplit(parts._replace(netloc=f"{name}:{password}@{parts.hostname}:"
                                                f"{parts.port or 6379}"))

    yield make
    for name in made:
        admin.acl_deluser(name)
    admin.close()


async def test_partitions_journal_through_an_acl_user_limited_to_their_keys(
        actors, gateway, acl_user):
    """A partition whose --redis-url names an ACL user of `~integration-*` keys journals an
    applied movement; the same user is refused any other key."""
    url = acl_user("~integration-*", "+@all", "-@dangerous")
    namespace, handles = actors(1, journal=True, redis_url=url)
    target = await gateway(handles)
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        sku = unique("acl-sku")
        movement = pb.Movement(event_id=unique("acl"), source="wms", sku=sku,
                               location=LOC, type=pb.MOVEMENT_TYPE_RECEIPT, quantity=3)
        answer = await stub_of(channel).ApplyMovements(
            pb.ApplyMovementsRequest(movements=[movement]), timeout=DEADLINE_S)
        assert [r.code for r in answer.results] == [pb.MOVEMENT_CODE_APPLIED]
    as_user = connect(url)
    try:
        vp = partition_of(sku, DEFAULT_VIRTUAL_PARTITIONS)
        assert as_user.xlen(f"{namespace}:{{p{vp}}}:journal") >= 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user.get("availability:{p0}:epoch")
    finally:
        as_user.close()


async def test_ingest_and_sources_each_with_their_own_acl_user(acl_user):
    """A source user may only XADD to the events stream; the ingest user reads and
    acknowledges it and writes dead letters, and can touch no journal."""
    prefix = f"acl-{uuid.uuid4().hex[:8]}"
    config = IngestConfig(stream=f"{prefix}:events", dead_letters=f"{prefix}:events:dlq",
                          block_ms=50)
    source = aioredis.from_url(acl_user(f"~{config.stream}", *SOURCE_COMMANDS))
    ingest = aioredis.from_url(acl_user(f"~{prefix}:events*", *INGEST_COMMANDS))
    admin = aioredis.from_url(REDIS_URL)
    hosts = [PartitionHost(0)]
    router = Router(LocalPartitions(hosts), GatewayConfig())
    try:
        good = pb.Movement(event_id="e-1", source="pos", sku="acl-sku", location=LOC,
                           type=pb.MOVEMENT_TYPE_RECEIPT, quantity=4)
        await source.xadd(config.stream, {"movement": good.SerializeToString()})
        await source.xadd(config.stream, {"movement": b"\xff\xff"})
        for forbidden in (source.xrange(config.stream), source.get(f"{prefix}:journal"),
                          source.xadd(f"{prefix}:events:dlq", {"x": "1"})):
            with pytest.raises(redis.exceptions.NoPermissionError):
                await forbidden
        worker = IngestWorker(ingest, router, config=config)
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        try:
            await wait_until(lambda: worker.stats.applied + worker.stats.dead_lettered == 2,
                             DEADLINE_S, "both entries handled")
        finally:
            stop.set()
            await running
        answer = await router.get_availability(GetAvailability((ItemRef("acl-sku", LOC),)))
        assert answer.items[0].on_hand == 4
        assert await admin.xlen(config.dead_letters) == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            await ingest.get("availability:{p0}:epoch")
    finally:
        await admin.delete(config.stream, config.dead_letters)
        for client in (source, ingest, admin):
            await client.aclose()
