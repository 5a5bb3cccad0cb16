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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from inventory.v1 import availability_pb2 as pb

from engine.mappings import Mappings
from engine.model import Movement, MovementCode, MovementResult, Outcome
from engine.normalize import normalize
from engine.routing import partition_of
from engine.validation import ValidationError, validate_movements
from gateway import codec
from gateway.lanes import LaneOverloaded
from gateway.router import Router

SCHEMA_VERSION = b"1"
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

    batch_entries_max: int = 1_000
    block_ms: int = 500
    # An entry pending this long is taken to be abandoned (its worker died) and claimed.
    claim_idle_ms: int = 10_000
    claim_interval_s: float = 1.0
    # An entry delivered this often without being applied goes to the DLQ.
    deliveries_max: int = 10


class EntryRefused(Exception):
    """An entry that can never be applied as it is: it goes to the DLQ with this reason."""


@dataclass
class IngestStats:
    """What a worker has done, and what it saw of each source's sequence numbers."""

    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    sequence_gaps: Counter = field(default_factory=Counter)  # source -> missing numbers
    sequence_regressions: Counter = field(default_factory=Counter)
    last_sequence: dict[str, int] = field(default_factory=dict)

    def saw_sequence(self, movement: Movement) -> None:
        """Count gaps and regressions of a source's `source_sequence`; never block on them."""
        sequence = movement.source_sequence
        if not sequence:
            return
        last = self.last_sequence.get(movement.source)
        if last is not None and sequence > last + 1:
            self.sequence_gaps[movement.source] += sequence - last - 1
            log.warning("source %s skipped sequence numbers %s..%s", movement.source,
                        last + 1, sequence - 1)
        elif last is not None and sequence <= last:
            self.sequence_regressions[movement.source] += 1
        self.last_sequence[movement.source] = max(sequence, last or 0)


def decode_entry(fields: dict[bytes, bytes]) -> pb.Movement:
    """The wire Movement an entry carries; raises EntryRefused naming what is wrong."""
    version = fields.get(b"schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise EntryRefused(f"schema_version {version.decode(errors='replace')!r} is not "
                           f"supported (only {SCHEMA_VERSION.decode()})")
    try:
        if b"movement" in fields:
            return pb.Movement.FromString(fields[b"movement"])
        if b"json" in fields:
            return json_format.Parse(fields[b"json"], pb.Movement())
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as error:
        raise EntryRefused(f"undecodable payload: {error}") from None
    raise EntryRefused("entry has neither a `movement` nor a `json` field")


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
        refused: dict[bytes, str] = {}
        movements: dict[bytes, Movement] = {}
        acknowledged: list[bytes] = []
        for entry_id, fields in entries:
            if not fields:  # deleted from the stream while pending: nothing to apply
                acknowledged.append(entry_id)
                continue
            try:
                movement = self._movement(fields)
            except EntryRefused as error:
                refused[entry_id] = str(error)
            else:
                movements[entry_id] = movement
                self.stats.saw_sequence(movement)
        answers = await asyncio.gather(*(self._submit(m) for m in movements.values()),
                                       return_exceptions=True)
        for entry_id, answer in zip(movements, answers, strict=True):
            if isinstance(answer, BaseException):  # a partition away, a lane full: later
                if deliveries.get(entry_id, 1) >= self.config.deliveries_max:
                    refused[entry_id] = (f"not applied after {deliveries[entry_id]} "
                                         f"deliveries: {type(answer).__name__}: {answer}")
                else:
                    self.stats.retried += 1
                continue
            if answer.code is MovementCode.REJECTED or answer.outcome is not Outcome.OK:
                refused[entry_id] = f"{answer.outcome.name}: {answer.message}"
                continue
            acknowledged.append(entry_id)
            if answer.code is MovementCode.DUPLICATE:
                self.stats.duplicates += 1
            else:
                self.stats.applied += 1
        fields_of = dict(entries)
        await self._finish(acknowledged, {entry_id: (fields_of[entry_id], reason)
                                          for entry_id, reason in refused.items()},
                           deliveries)

    def _movement(self, fields: dict[bytes, bytes]) -> Movement:
        try:
            movement = normalize(codec.movement_command(decode_entry(fields)), self._mappings)
            validate_movements([movement], self._router.config.requests)
        except ValidationError as error:
            raise EntryRefused(str(error).removeprefix("movements[0].")) from None
        return movement

    def _submit(self, movement: Movement) -> asyncio.Future[MovementResult]:
        """Queue on the movement's lane now; a lane that refuses gives a failed future (no
        task per movement: a batch holds a thousand)."""
        try:
            return self._router.submit(partition_of(movement.sku, self._router.partitions.count),
                                       movement, None)
        except LaneOverloaded as error:
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(error)
            return refused

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
