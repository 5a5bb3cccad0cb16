"""What operators need from the partition actors and Redis, polled on the gateway's event loop.

Partition figures live in the actors (holds, journal writes, snapshots), so the gateway
asks each actor once per poll, all calls awaited together, and exports the answers with
a `partition` label: one scrape of one process shows the whole engine. Redis gives the
ingest backlog (the consumer group's lag and pending entries, the DLQ's length) and each
journal reader's checkpoint (the ERP sync job's backlog and lag).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import redis
import redis.asyncio as aioredis

from engine import journal
from engine.erp_outbox import SyncState
from engine.journal_store import JournalStore, connect
from engine.publish_store import read_status
from gateway.ingest import IngestConfig

# How long the poller waits for a partition's answer; past it the partition shows as down.
PARTITION_TIMEOUT_S = 2.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpsView:
    """One poll's figures; a part that could not be read is None, and why is in `errors`."""

    partitions: list[dict | None]  # each partition's metrics(), None if it did not answer
    readers: list[dict[str, dict]] | None  # per partition: reader -> backlog and lag
    ingest: dict | None  # lag_entries, pending_entries, consumers, dlq_entries
    polled_at_s: float
    errors: list[str] = field(default_factory=list)
    erp_sync: dict[str, float] | None = None  # the running sync job's status; {} if none
    channels: dict[str, dict] | None = None  # the running publisher's; {} if none


class JournalReaders:
    """Each partition's registered journal readers, and how far behind the journal they are."""

    def __init__(self, redis_url: str, key_prefix: str, partitions: int) -> None:
        client = connect(redis_url)
        self._stores = [JournalStore(client, partition, key_prefix)
                        for partition in range(partitions)]
        self._sync = SyncState(client, key_prefix)
        self._client, self._prefix = client, key_prefix

    def erp_sync(self) -> dict[str, float]:
        """What the running erp-sync job last published (breaker, lag); {} if none runs."""
        return self._sync.status()

    def channels(self) -> dict[str, dict]:
        """What a running `availability publish` last wrote per channel; {} if none runs."""
        return read_status(self._client, self._prefix)

    def figures(self, now_ms: int) -> list[dict[str, dict]]:
        """Per partition, reader -> {backlog_commands, lag_s}; blocking (run it in a thread)."""
        figures = []
        for store in self._stores:
            readers = store.readers()
            last_seq = store.last_seq() if readers else 0
            of_partition = {}
            for reader, drained in readers.items():
                oldest = next(store.entries_after(drained, chunk=1), None)
                # The age of the oldest change it has not checkpointed; 0 when caught up.
                lag_s = 0.0 if oldest is None else max(
                    0, now_ms - journal.decode_ledger(oldest).now_ms) / 1000
                of_partition[reader] = {"backlog_commands": max(0, last_seq - drained),
                                        "lag_s": lag_s}
            figures.append(of_partition)
        return figures


async def ingest_figures(client: aioredis.Redis, config: IngestConfig) -> dict:
    """The ingest group's lag (Redis 7+, else None) and pending entries, and the DLQ length."""
    dlq_entries = await client.xlen(config.dead_letters)
    try:
        groups = await client.xinfo_groups(config.stream)
    except redis.ResponseError:  # no stream yet: nothing was ever posted
        groups = []
    wanted = config.group.encode()
    group = next((g for g in groups if g.get("name") in (wanted, config.group)), None)
    if group is None:
        return {"lag_entries": None, "pending_entries": None, "consumers": 0,
                "dlq_entries": dlq_entries}
    return {"lag_entries": group.get("lag"), "pending_entries": group.get("pending"),
            "consumers": group.get("consumers"), "dlq_entries": dlq_entries}


class OpsPoller:
    """Polls the partitions and, when given, the events stream and journal readers."""

    def __init__(self, partitions, events: aioredis.Redis | None = None,
                 readers: JournalReaders | None = None,
                 ingest: IngestConfig | None = None) -> None:
        self._partitions = partitions
        self._events = events
        self._readers = readers
        self._ingest = ingest or IngestConfig()
        self.view: OpsView | None = None

    async def poll(self) -> OpsView:
        """Read everything at once and keep it as `view`."""
        errors: list[str] = []
        now_s = time.time()
        partitions, readers, ingest, erp_sync, channels = await asyncio.gather(
            self._poll_partitions(), self._poll_readers(now_s, errors),
            self._poll_ingest(errors), self._poll_erp_sync(errors), self._poll_channels(errors))
        self.view = OpsView(partitions, readers, ingest, now_s, errors, erp_sync, channels)
        return self.view

    async def _poll_partitions(self) -> list[dict | None]:
        ask = getattr(self._partitions, "metrics", None)
        if ask is None:  # a Partitions that keeps no figures
            return [None] * self._partitions.count
        return await ask(PARTITION_TIMEOUT_S)

    async def _poll_readers(self, now_s: float, errors: list[str]) -> list[dict] | None:
        if self._readers is None:
            return None
        try:
            return await asyncio.to_thread(self._readers.figures, int(now_s * 1000))
        except (redis.RedisError, OSError) as error:
            errors.append(f"journal readers unknown: {error}")
            return None

    async def _poll_erp_sync(self, errors: list[str]) -> dict[str, float] | None:
        if self._readers is None:
            return None
        try:
            return await asyncio.to_thread(self._readers.erp_sync)
        except (redis.RedisError, OSError) as error:
            errors.append(f"ERP sync status unknown: {error}")
            return None

    async def _poll_channels(self, errors: list[str]) -> dict[str, dict] | None:
        if self._readers is None:
            return None
        try:
            return await asyncio.to_thread(self._readers.channels)
        except (redis.RedisError, OSError, ValueError) as error:
            errors.append(f"channel publishing status unknown: {error}")
            return None

    async def _poll_ingest(self, errors: list[str]) -> dict | None:
        if self._events is None:
            return None
        try:
            return await ingest_figures(self._events, self._ingest)
        except (redis.RedisError, OSError) as error:
            errors.append(f"ingest backlog unknown: {error}")
            return None

    async def close(self) -> None:
        if self._events is not None:
            await self._events.aclose()
