"""A partition whose every change is in its Redis journal before it is answered."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

import redis

from engine import journal, snapshot
from engine.config import DurabilityConfig, PartitionConfig
from engine.journal_group import JournalGroup
from engine.journal_store import Fenced, JournalStore
from engine.journal_writer import WRITTEN, JournalDown, JournalWriter, Ticket
from engine.model import READS, Command, Result, Unavailable
from engine.partition_host import PartitionHost, wall_clock_ms
from engine.partition_map import MOVED
from engine.partition_state import PartitionState
from engine.snapshot_writer import SnapshotWriter

log = logging.getLogger(__name__)
# How often a partition that cannot reach Redis tries again.
RETRY_INTERVAL_S = 0.5
FENCED = "fenced: a newer actor owns this partition"
# Refused for good because the partition moved to another actor (the map says so).
DROPPED = "dropped: the partition moved to another actor"
# Holds due within this long count as "expiring" for operators.
HOLDS_SOON_S = 60


class Applied:
    """A batch applied in memory; `results` waits until its journal entry is written."""

    __slots__ = ("_results", "_ticket", "_timeout_s")

    def __init__(self, results: list, ticket: Ticket, timeout_s: float) -> None:
        self._results, self._ticket, self._timeout_s = results, ticket, timeout_s

    def results(self) -> list[Result | Unavailable]:
        """One result per command; changes whose entry was not written are Unavailable."""
        try:
            self._ticket.wait(self._timeout_s)
        except JournalDown as error:
            if isinstance(error.__cause__, Fenced):
                # Redis refused the write before adding anything: the newer owner never
                # sees this batch, so the gateway may send it there.
                return [Unavailable(f"{MOVED} {error}")] * len(self._results)
            # Reads too: they saw this batch, and maybe others, that are not durable.
            return [Unavailable(f"journal write failed: {error}")] * len(self._results)
        return self._results


class DurablePartition:
    """Applies batches in memory, journals them with group commit, recovers from Redis.

    Thread-safe: callers apply one batch at a time under the lock, then wait for their
    own journal write outside it, so batch k+1 is applied while batch k's write is in
    flight. While the journal cannot be written (Redis gone, or this actor fenced by a
    newer one) changes are refused as Unavailable without being applied; reads answer
    from memory while Redis is gone, and not at all once fenced. With no store nothing
    is journaled (benchmarks' baseline).
    """

    def __init__(self, partition: int, store: JournalStore | None,
                 config: PartitionConfig | None = None,
                 durability: DurabilityConfig | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 snapshots: SnapshotWriter | None = None,
                 journal_group: JournalGroup | None = None) -> None:
        self.partition = partition
        self.durability = durability or DurabilityConfig()
        self._config = config
        self._store = store
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        # In an actor of many partitions one group writes them all (engine/journal_group.py).
        self._writer = store and (journal_group.writer(store, self._journal_failed)
                                  if journal_group else
                                  JournalWriter(store.append, self._journal_failed))
        self.snapshots = store and (snapshots or SnapshotWriter(store))
        self._down: str | None = None  # why changes are refused, or None
        self.host = PartitionHost(partition, config, clock_ms,
                                  on_applied=self._journal if store else None)
        self.recovered_in_s = 0.0

    # ---- start and recovery -----------------------------------------------------------

    def recover(self) -> None:
        """Claim the partition (fencing out any older actor), then rebuild it from Redis."""
        if self._store is None:
            return
        started = time.monotonic()
        self._store.claim()
        self.host.state = self._load()
        self.snapshots.saved(self._store.snapshot_seq(), self._clock_ms())
        self.host.adopt_channel_rules()  # journaled: a later replay switches rules here too
        self.recovered_in_s = time.monotonic() - started
        log.info("partition %s recovered at seq %s in %.2fs (epoch %s)", self.partition,
                 self.host.state.seq, self.recovered_in_s, self._store.epoch)

    def recover_until_redis_answers(self) -> None:
        """recover(), retrying while Redis is unreachable (an actor started before Redis)."""
        while True:
            try:
                return self.recover()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("partition %s: Redis unreachable (%s); retrying", self.partition,
                            error)
            time.sleep(RETRY_INTERVAL_S)

    def _load(self) -> PartitionState:
        """The latest snapshot plus every journal entry after it."""
        saved = self._store.load_snapshot()
        state = (snapshot.load(saved[1], self._config) if saved
                 else PartitionState(self._config))
        journal.replay(state, self._store.entries_after(state.seq))
        return state

    # ---- the hot path ---------------------------------------------------------------------

    def start(self, commands: Sequence[Command]) -> Applied:
        """Apply `commands` in memory now; the journal write may still be in flight."""
        with self._lock:
            if self._refusing():
                return Applied(self._apply_reads_only(commands), WRITTEN, 0)
            results = self.host.apply(commands)
            # Reads wait too: an answer never shows a change that is not yet durable.
            ticket = self._writer.last_ticket if self._writer else WRITTEN
        return Applied(results, ticket, self.durability.write_timeout_s)

    def _refusing(self) -> bool:
        # The writer may have failed a moment before it told us (_journal_failed).
        return self._down is not None or bool(self._writer and self._writer.failed)

    def apply(self, commands: Sequence[Command]) -> list[Result | Unavailable]:
        """Apply and wait until journaled: one result (or Unavailable) per command."""
        return self.start(commands).results()

    def _apply_reads_only(self, commands: Sequence[Command]) -> list[Result | Unavailable]:
        reason = (f"partition {self.partition} cannot journal "
                  f"({self._down or self._writer.failed})")
        if self._down in (FENCED, DROPPED):
            # Memory is never rebuilt now: it holds the batch refused when the fence was
            # met, and falls further behind the newer actor with every change it takes.
            return [Unavailable(f"{MOVED} {reason}") for _ in commands]
        reads = [command for command in commands if type(command) in READS]
        answers = iter(self.host.apply(reads) if reads else ())
        return [next(answers) if type(command) in READS else Unavailable(reason)
                for command in commands]

    def _journal(self, commands: Sequence[Command], now_ms: int, first_seq: int,
                 last_seq: int) -> None:
        self._writer.submit(last_seq, journal.encode(commands, now_ms, first_seq, last_seq,
                                                     self.host.state.ledger_changes()))

    # ---- what the actor's timer thread does ---------------------------------------------

    def tick(self, may_snapshot: bool = True) -> None:
        """Expire due holds and take a snapshot when one is due (and `may_snapshot`: an
        actor of many partitions runs one compactor at a time); neither while down."""
        with self._lock:
            if self._refusing():
                return
            self.host.sweep()
            if self._store is None:
                return
            state, now_ms = self.host.state, self._clock_ms()
            if may_snapshot and self.snapshots.due(state.seq, now_ms, self.durability):
                self.snapshots.start(state, now_ms, self._writer.last_ticket)
        self.snapshots.finish_if_done()

    @property
    def fenced(self) -> bool:
        """Refusing for good: a newer actor claimed the partition, or it was dropped here."""
        return self._down in (FENCED, DROPPED)

    @property
    def compacting(self) -> bool:
        return bool(self.snapshots and self.snapshots.running)

    def close(self) -> None:
        """Stop serving (later batches are answered MOVED) once every batch applied so far
        is journaled or failed, and let the writer thread go: the partition moves away."""
        with self._lock:
            self._down = DROPPED
            ticket = self._writer.last_ticket if self._writer else WRITTEN
        with contextlib.suppress(JournalDown):  # its callers learn how it went
            ticket.wait(self.durability.write_timeout_s)
        if self._writer is not None:
            self._writer.close()

    def status(self) -> dict:
        """What a readiness probe or an operator wants to know at a glance."""
        with self._lock:
            status = self.host.status()
        if self._store is None:
            return {**status, "journal": "off"}
        return {**status, "epoch": self._store.epoch, "journal": self._down or "ok",
                "recovered_in_s": round(self.recovered_in_s, 3), **self.snapshots.status()}

    def metrics(self) -> dict:
        """status() plus what operators graph: holds live and due within HOLDS_SOON_S,
        journal write latency, and the snapshot's age."""
        figures = self.status()
        now_ms = self._clock_ms()
        # Outside the lock: counting is a scan of the due index, and batches need not wait.
        live, due = self.host.state.reservations.count_holds(now_ms + 1000 * HOLDS_SOON_S)
        figures.update(holds_live=live, holds_expiring=due, holds_expiring_within_s=HOLDS_SOON_S)
        if self._writer is not None:
            figures["journal_write_latency"] = self._writer.write_latency.snapshot()
        if self.snapshots:
            # Since the last snapshot, or since recovery when none was taken since.
            figures["snapshot_age_s"] = max(0, now_ms - self.snapshots.saved_at_ms) / 1000
        return figures

    # ---- failure and return of Redis --------------------------------------------------

    def _journal_failed(self, error: BaseException) -> None:
        """Called by the writer thread: refuse changes, and start waiting for Redis."""
        fenced = isinstance(error, Fenced)
        with self._lock:
            if self._down is not None:
                return
            self._down = FENCED if fenced else f"{type(error).__name__}: {error}"
        if fenced:  # for good: the newer actor has the partition
            log.error("partition %s was claimed by a newer actor; this one refuses changes",
                      self.partition)
            return
        threading.Thread(target=self._rebuild_when_redis_returns, daemon=True,
                         name=f"rebuild-{self.partition}").start()

    def _rebuild_when_redis_returns(self) -> None:
        """Throw away what memory holds beyond Redis and rebuild from the journal.

        A failed write may have reached Redis or not; only the journal knows, and its
        callers were told UNAVAILABLE either way, so their retries with the same key get
        the truth.
        """
        while True:
            time.sleep(RETRY_INTERVAL_S)
            if self._down == DROPPED:  # moved away meanwhile: nothing to rebuild here
                return
            try:
                # A new epoch first: anything started under the old one (a compactor, a
                # write that is somehow still on its way) is fenced from here on.
                self._store.reclaim()
                state = self._load()
            except Fenced:
                with self._lock:
                    self._down = FENCED
                log.error("partition %s was claimed by a newer actor; this one refuses "
                          "changes", self.partition)
                return
            except journal.JournalGap as error:  # not Redis being away: say it loudly
                log.error("partition %s cannot rebuild: %s", self.partition, error)
                continue
            except Exception as error:  # Redis still away
                log.debug("partition %s: Redis not back yet (%s)", self.partition, error)
                continue
            with self._lock:
                if self._down == DROPPED:
                    return
                self.host.state = state
                self._writer.reopen()
                self._down = None
                # The rules entry journaled at recovery may have been in the failed write.
                self.host.adopt_channel_rules()
            log.info("partition %s: journal back, rebuilt at seq %s", self.partition, state.seq)
            return

