"""Dead letters on real Redis and Ray: a letter refused for an unknown alias is replayed once
its mapping is fixed and applied exactly once; replaying it again changes nothing; a letter
can be dropped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from inventory.v1 import availability_pb2 as pb

from engine.cli import main
from engine.config import GatewayConfig
from engine.mappings import Mappings
from gateway import dead_letters
from gateway.dead_letters import REPLAYED_FROM, UnknownLetter
from gateway.ingest import IngestConfig, IngestWorker
from gateway.partitions import RayPartitions
from gateway.router import Router
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import LOC, wait_until
from tests.integration.test_ingest import DEADLINE_S, on_hand, redis_client, streams

__all__ = ["redis_client", "streams"]  # fixtures, imported to be found by pytest

MAPPING = 'strict = true\n[sku_aliases]\n"LISTING-1" = "MUG-WHT"\n'
FIXED_MAPPING = MAPPING + '"LISTING-2" = "MUG-BLK"\n"LISTING-3" = "MUG-RED"\n'


@pytest.fixture
def letters_client():
    """A plain (sync) client, as the dlq command uses."""
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def sale_entry(event_id: str, listing: str, quantity: int) -> dict[bytes, bytes]:
    movement = pb.Movement(event_id=event_id, source="marketplace",
                           type=pb.MOVEMENT_TYPE_RECEIPT, sku=listing, location=LOC,
                           quantity=quantity)
    return {b"movement": movement.SerializeToString()}


async def ingest(redis_client, router: Router, streams: IngestConfig, mappings: Mappings,
                 handled: int) -> IngestWorker:
    """Run a worker until it has handled `handled` entries (applied, duplicate or refused)."""
    worker = IngestWorker(redis_client, router, mappings, config=streams)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: worker.stats.applied + worker.stats.duplicates
                         + worker.stats.dead_lettered >= handled, DEADLINE_S,
                         f"{handled} entries handled")
    finally:
        stop.set()
        await running
    return worker


async def test_letter_fixed_by_a_mapping_change_is_replayed_and_applied_once(
        actors, redis_client, streams, letters_client, tmp_path: Path):
    """Unknown aliases of a strict source are dead-lettered; once the mapping knows them,
    replayed letters (by the API and by the CLI) are applied once, a second replay of the
    same id changes nothing, and a garbage letter is dropped."""
    _, handles = actors(2, journal=True)
    router = Router(RayPartitions(handles), GatewayConfig())
    (tmp_path / "marketplace.toml").write_text(MAPPING)
    await redis_client.xadd(streams.stream, sale_entry("listing-2-in", "LISTING-2", 5))
    await redis_client.xadd(streams.stream, {**sale_entry("listing-3-in", "LISTING-3", 7),
                                             b"source": b"marketplace-eu"})
    await redis_client.xadd(streams.stream, {"movement": b"\xff\xff\xff"})
    first = await ingest(redis_client, router, streams, Mappings.load(tmp_path), handled=3)
    assert first.stats.dead_lettered == 3
    by_event = {dead_letters.describe(letter).get("movement", {}).get("eventId"): letter
                for letter in dead_letters.list_letters(letters_client, streams)}
    assert "LISTING-2" in by_event["listing-2-in"].reason
    mug_blk, mug_red, garbage = by_event["listing-2-in"], by_event["listing-3-in"], by_event[None]

    (tmp_path / "marketplace.toml").write_text(FIXED_MAPPING)
    [replayed] = dead_letters.replay(letters_client, streams, [mug_blk.id])
    assert main(["dlq", "replay", mug_red.id, "--redis-url", REDIS_URL, "--stream",
                 streams.stream, "--dead-letters", streams.dead_letters]) == 0
    posted = {fields[REPLAYED_FROM].decode(): fields
              for _, fields in await redis_client.xrange(streams.stream, replayed.event_id)}
    assert posted[mug_blk.id] == {**sale_entry("listing-2-in", "LISTING-2", 5),
                                  REPLAYED_FROM: mug_blk.id.encode()}
    assert posted[mug_red.id][b"source"] == b"marketplace-eu"  # the entry's own, kept
    # The same movement posted once more, as a replay from a restored backup would do.
    await redis_client.xadd(streams.stream, posted[mug_blk.id])
    second = await ingest(redis_client, router, streams, Mappings.load(tmp_path), handled=3)
    assert (second.stats.applied, second.stats.duplicates) == (2, 1)
    assert await on_hand(router, ["MUG-BLK", "MUG-RED"]) == {"MUG-BLK": 5, "MUG-RED": 7}

    stream_length = await redis_client.xlen(streams.stream)
    with pytest.raises(UnknownLetter, match=mug_blk.id):
        dead_letters.replay(letters_client, streams, [mug_blk.id, garbage.id])
    assert main(["dlq", "replay", mug_red.id, "--redis-url", REDIS_URL, "--stream",
                 streams.stream, "--dead-letters", streams.dead_letters]) == 1
    assert await redis_client.xlen(streams.stream) == stream_length
    assert [letter.id for letter in dead_letters.list_letters(letters_client, streams)] == [
        garbage.id]

    assert dead_letters.drop(letters_client, streams, [garbage.id]) == 1
    assert dead_letters.list_letters(letters_client, streams) == []
    assert dead_letters.replay(letters_client, streams, dead_letters.ALL) == []
