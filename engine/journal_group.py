"""Group commit across the partitions of one actor: one thread, one Redis round trip.

An actor hosts dozens of virtual partitions and a gateway's batch touches many of them;
a writer thread and a Redis call per partition would multiply threads waking and round
trips by that many. Here each partition keeps a JournalWriter's interface (its own
order, tickets and failure state) while one thread writes every partition's queued
entries as one pipeline of their append scripts, each still fenced by its own epoch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import redis

from engine.journal_store import JournalStore
from engine.journal_writer import ENTRIES_PER_WRITE_MAX, WRITTEN, Ticket
from engine.latency_histogram import LatencyHistogram

log = logging.getLogger(__name__)


class JournalGroup:
    """Writes the entries queued by its members, in order per member, from one thread."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._queue: list[tuple[GroupWriter, int, bytes, Ticket]] = []
        self._wake = threading.Condition()
        threading.Thread(target=self._write_forever, name="journal-group", daemon=True).start()

    def writer(self, store: JournalStore, on_failure) -> GroupWriter:
        return GroupWriter(self, store, on_failure)

    def _put(self, item: tuple) -> BaseException | None:
        """Queue a member's entry, unless the member has failed (then its error)."""
        with self._wake:
            if item[0].failed is not None:
                return item[0].failed
            self._queue.append(item)
            self._wake.notify()
        return None

    def _withdraw(self, member: GroupWriter, error: BaseException) -> tuple[bool, list]:
        """Fail `member` and take its queued entries out, atomically with `_put`: they were
        applied to a state its rebuild throws away, so none may be written after `reopen`.
        Whether this is its first failure, and the tickets of the entries taken out."""
        with self._wake:
            first = member.failed is None
            member.failed = member.failed or error
            mine = [item for item in self._queue if item[0] is member]
            if mine:
                self._queue = [item for item in self._queue if item[0] is not member]
        return first, [ticket for *_, ticket in mine]

    def _write_forever(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    self._wake.wait()
                batch = self._queue[:ENTRIES_PER_WRITE_MAX]
                del self._queue[:ENTRIES_PER_WRITE_MAX]
            of_member: dict[GroupWriter, list[tuple[int, bytes, Ticket]]] = {}
            for member, last_seq, entry, ticket in batch:
                if member.failed is not None:  # a gap would break replay: fail the rest
                    ticket.settle(member.failed)
                else:
                    of_member.setdefault(member, []).append((last_seq, entry, ticket))
            if of_member:
                self._write(of_member)

    def _write(self, of_member: dict) -> None:
        started = time.perf_counter()
        try:
            if len(of_member) == 1:  # no pipeline needed: the store's own call
                [(member, entries)] = of_member.items()
                member.store.append([(seq, entry) for seq, entry, _ in entries])
                answers: Sequence = [None]
            else:
                with self._client.pipeline(transaction=False) as pipe:
                    for member, entries in of_member.items():
                        member.store.append_to(pipe, [(seq, entry) for seq, entry, _ in entries])
                    answers = pipe.execute(raise_on_error=False)
        except Exception as error:  # Redis gone or timed out (or one member fenced)
            answers = [error] * len(of_member)
        latency_ms = 1000 * (time.perf_counter() - started)
        for (member, entries), answer in zip(of_member.items(), answers, strict=True):
            if isinstance(answer, Exception):
                member.fail([ticket for *_, ticket in entries], JournalStore.as_fenced(answer))
            else:
                member.write_latency.observe(latency_ms)
                for *_, ticket in entries:
                    ticket.settle()


class GroupWriter:
    """One partition's place in a JournalGroup, with a JournalWriter's interface."""

    def __init__(self, group: JournalGroup, store: JournalStore, on_failure) -> None:
        self._group, self.store, self._on_failure = group, store, on_failure
        self.failed: BaseException | None = None
        self.last_ticket = WRITTEN
        self.write_latency = LatencyHistogram()

    def submit(self, last_seq: int, entry: bytes) -> Ticket:
        ticket = Ticket()
        failed = self._group._put((self, last_seq, entry, ticket))
        if failed is not None:
            ticket.settle(failed)
        self.last_ticket = ticket
        return ticket

    def fail(self, tickets: list[Ticket], error: BaseException) -> None:
        first, queued = self._group._withdraw(self, error)
        tickets = tickets + queued
        log.error("journal write of partition %s failed (%s); %d entries not acknowledged",
                  self.store.partition, error, len(tickets))
        for ticket in tickets:
            ticket.settle(error)
        if first:
            self._on_failure(error)

    def reopen(self) -> None:
        with self._group._wake:
            self.failed = None
            self.last_ticket = WRITTEN

    def close(self) -> None:
        """Nothing to stop: the group's thread serves the actor's other partitions."""
