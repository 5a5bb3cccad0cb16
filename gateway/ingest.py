"""Ingest workers: stock movements from the Redis Stream `availability:events`, exactly once.

A worker reads the stream in batches with XREADGROUP (group `availability-ingest`),
decodes each entry (field `movement`, a serialized inventory.v1.Movement, or `json`, its
protobuf JSON mapping), normalizes it by its source's mapping, validates it, and applies
it through the router's partition lanes, the same path as gRPC ApplyMovements. An entry
is acknowledged only once its movement is applied and journaled; one that cannot be
applied goes to `availability:events:dlq` with its original fields and a reason, in the
same transaction as its acknowledgement. Entries left pending by a dead worker (or by a
partition that was unavailable) are claimed with XAUTOCLAIM and finished. Delivery is at
least once; applying by `event_id` is idempotent, so the effect is exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from engine.mappings import Mappings
from engine.model import MovementCode, MovementResult, Outcome
from gateway.ingest_entries import EntryRefused, IngestStats, decode_entry, read_entries
from gateway.router import Router

# The fields a dead letter adds to the entry, and the one that lists which it added.
_LETTER_FIELDS = (b"reason", b"entry_id", b"attempts", b"source")
ADDED_FIELDS = b"added_fields"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    """Where a worker reads (the pinned names), in what batches, when it claims others'."""

    stream: str = "availability:events"
    group: str = "availability-ingest"
    dead_letters: str = "availability:events:dlq"

    # Entries per XREADGROUP. A read's movements go to each partition as one lot, and
    # bigger calls cost the actors less per movement (loadtest/BENCHMARKS.md: 36 µs at 250
    # a call, 29 µs at 860). With the default 4 partitions a read makes lots of ~875, one
    # call each: under a lane's batch_commands_max (1,000), so none is split in two.
    batch_entries_max: int = 3_500
    block_ms: int = 500
    # An entry pending this long is taken to be abandoned (its worker died) and claimed.
    claim_idle_ms: int = 10_000
    claim_interval_s: float = 1.0
    # An entry delivered this often without being applied goes to the DLQ.
    deliveries_max: int = 10


class IngestWorker:
    """One consumer of the events stream, applying through `router`."""

    def __init__(self, client: aioredis.Redis, router: Router, mappings: Mappings | None = None,
                 config: IngestConfig | None = None, name: str | None = None) -> None:
        self._client = client
        self._router = router
        self._mappings = mappings or Mappings()
        self.config = config or IngestConfig()
        self.name = name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.stats = IngestStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; what is in hand when it is set is finished first."""
        await ensure_group(self._client, self.config)
        loop = asyncio.get_running_loop()
        claim_at = 0.0
        while not stop.is_set():
            if loop.time() >= claim_at:
                await self._claim_abandoned()
                claim_at = loop.time() + self.config.claim_interval_s
            answer = await self._client.xreadgroup(
                self.config.group, self.name, {self.config.stream: ">"},
                count=self.config.batch_entries_max,
                block=self.config.block_ms)
            # [[stream, entries]] over RESP2, {stream: [entries]} over RESP3.
            for entries in (answer.values() if isinstance(answer, dict)
                            else (entries for _, entries in answer or ())):
                await self.process(entries)

    async def _claim_abandoned(self) -> None:
        """Take over entries pending longer than claim_idle_ms, and finish them."""
        start = "0-0"
        while True:
            # Redis 7 adds a third element (ids deleted meanwhile); 6.2 lists them with no
            # fields among the entries.
            start, entries = (await self._client.xautoclaim(
                self.config.stream, self.config.group, self.name, self.config.claim_idle_ms,
                start_id=start,
                count=self.config.batch_entries_max))[:2]
            if entries:
                await self.process(entries, claimed=True)
            if start in (b"0-0", "0-0"):
                return

    async def process(self, entries: Sequence[tuple[bytes, dict]], claimed: bool = False) -> None:
        """Apply a batch of entries; acknowledge the applied, dead-letter the hopeless."""
        deliveries = await self._deliveries(entries) if claimed else {}
        self.stats.reads += 1
        self.stats.entries_read += len(entries)
        batch = read_entries(entries, self._mappings, self._router.config.requests, self.stats)
        refused = batch.refused
        acknowledged = batch.empty
        answers = await self._router.apply_checked_movements(batch.movements)
        stats = self.stats
        for entry_id, answer in zip(batch.entry_ids, answers, strict=True):
            if type(answer) is MovementResult and answer.outcome is Outcome.OK:
                if answer.code is MovementCode.APPLIED:
                    stats.applied += 1
                    acknowledged.append(entry_id)
                    continue
                if answer.code is MovementCode.DUPLICATE:
                    stats.duplicates += 1
                    acknowledged.append(entry_id)
                    continue
            if not isinstance(answer, BaseException):
                refused[entry_id] = f"{answer.outcome.name}: {answer.message}"
            elif deliveries.get(entry_id, 1) >= self.config.deliveries_max:
                refused[entry_id] = (f"not applied after {deliveries.get(entry_id, 1)} "
                                     f"deliveries: {type(answer).__name__}: {answer}")
            else:  # a partition away, a lane full: a later delivery applies it
                stats.retried += 1
        fields_of = dict(entries) if refused else {}
        await self._finish(acknowledged, {entry_id: (fields_of[entry_id], reason)
                                          for entry_id, reason in refused.items()},
                           deliveries)

    async def _deliveries(self, entries: Sequence[tuple[bytes, dict]]) -> dict[bytes, int]:
        """How often each claimed entry has been delivered, from the group's pending list."""
        rows = await self._client.xpending_range(self.config.stream, self.config.group,
                                                 min=entries[0][0],
                                                 max=entries[-1][0], count=len(entries))
        return {row["message_id"]: row["times_delivered"] for row in rows}

    async def _finish(self, acknowledged: list[bytes], refused: dict[bytes, tuple[dict, str]],
                      deliveries: dict[bytes, int]) -> None:
        """Dead letters and acknowledgements in one transaction: none lost, none doubled."""
        if not acknowledged and not refused:
            return
        async with self._client.pipeline(transaction=True) as pipe:
            for entry_id, (fields, reason) in refused.items():
                pipe.xadd(self.config.dead_letters,
                          dead_letter(fields, entry_id, reason, deliveries.get(entry_id, 1)))
                log.warning("dead letter %s: %s", entry_id.decode(), reason)
            pipe.xack(self.config.stream, self.config.group, *acknowledged, *refused)
            await pipe.execute()
        self.stats.dead_lettered += len(refused)


async def ensure_group(client: aioredis.Redis, config: IngestConfig) -> None:
    """Create the consumer group (and the stream) if missing, from the stream's start."""
    try:
        await client.xgroup_create(config.stream, config.group, id="0", mkstream=True)
    except aioredis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


def dead_letter(fields: dict[bytes, bytes], entry_id: bytes, reason: str,
                attempts: int) -> dict[bytes, bytes]:
    """The DLQ entry of a refused entry: its fields, a reason, its id, attempts and source."""
    letter = {**fields, b"reason": reason.encode(), b"entry_id": entry_id,
              b"attempts": str(attempts).encode()}
    letter.setdefault(b"source", _source_of(fields))
    # What the worker added, so a replay (gateway/dead_letters.py) can post the original
    # entry again: `source` only when the entry did not carry one itself.
    letter[ADDED_FIELDS] = b" ".join(name for name in _LETTER_FIELDS
                                     if name != b"source" or b"source" not in fields)
    return letter


def _source_of(fields: dict[bytes, bytes]) -> bytes:
    """The source an entry names, if it can be read at all (for the dead letter)."""
    try:
        return decode_entry(fields).source.encode()
    except EntryRefused:
        return b""
