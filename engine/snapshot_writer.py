"""When a partition's snapshot is due, and writing it without stopping the partition."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable

from engine import snapshot
from engine.config import DurabilityConfig
from engine.journal_store import JournalStore
from engine.journal_writer import Ticket
from engine.partition_state import PartitionState

log = logging.getLogger(__name__)
# A compactor still running this long after it started is killed (a hung one would stop
# snapshots, and so journal trimming, for good).
COMPACTOR_DEADLINE_S = 600.0
# The compactor's command line for the partition's epoch and time (engine.compactor).
CompactorCommand = Callable[[int, int], list[str]]


class SnapshotWriter:
    """Takes one snapshot at a time: by a compactor process (the actor), or inline (tests).

    The compactor builds the snapshot from the last one plus the journal, in a process of
    its own, as log-structured stores compact their logs: the partition only starts it
    (no fork of its large process, so no stall beyond a process spawn), and it can never
    store a change the journal does not hold.
    """

    def __init__(self, store: JournalStore, compactor: CompactorCommand | None = None) -> None:
        self._store = store
        self._compactor = compactor
        self._running: tuple[subprocess.Popen, int, float] | None = None  # process, at_ms, t
        self.saved_seq = 0
        self.saved_at_ms = 0
        self.taken = 0
        self.last_stall_ms = 0.0
        self.longest_stall_ms = 0.0

    @property
    def running(self) -> bool:
        """A compactor is at work (an actor starts one at a time over its partitions)."""
        return self._running is not None

    def saved(self, seq: int, at_ms: int) -> None:
        self.saved_seq, self.saved_at_ms = seq, at_ms

    def due(self, seq: int, now_ms: int, durability: DurabilityConfig) -> bool:
        if self._running is not None or seq <= self.saved_seq:
            return False
        return (seq - self.saved_seq >= durability.snapshot_every_commands
                or now_ms - self.saved_at_ms >= 1000 * durability.snapshot_interval_s)

    def start(self, state: PartitionState, now_ms: int, journaled: Ticket) -> None:
        """Snapshot the partition as `state` is now or later; `journaled` settles once the
        journal holds `state`. Called with the partition's lock held."""
        if self._compactor is None:
            journaled.wait()
            if self._store.save_snapshot(state.seq, snapshot.dump(state), now_ms):
                self._record(state.seq, now_ms)
            return
        started = time.perf_counter()
        process = subprocess.Popen(self._compactor(self._store.epoch, now_ms),
                                   stdin=subprocess.DEVNULL)
        self.last_stall_ms = 1000 * (time.perf_counter() - started)
        self.longest_stall_ms = max(self.longest_stall_ms, self.last_stall_ms)
        self._running = (process, now_ms, time.monotonic())

    def finish_if_done(self) -> None:
        """Take note of the snapshot a finished compactor stored, or kill a hung one."""
        if self._running is None:
            return
        process, at_ms, started = self._running
        if process.poll() is None:
            if time.monotonic() - started < COMPACTOR_DEADLINE_S:
                return
            log.error("snapshot compactor %s is stuck; killing it", process.pid)
            process.kill()
            process.wait()
        self._running = None
        if process.returncode == 0:
            self._record(self._store.snapshot_seq(), at_ms)
        else:
            log.warning("snapshot compactor %s stored nothing (exit %s)", process.pid,
                        process.returncode)

    def _record(self, seq: int, at_ms: int) -> None:
        self.saved(seq, at_ms)
        self.taken += 1

    def status(self) -> dict:
        return {"snapshot_seq": self.saved_seq, "snapshot_at_ms": self.saved_at_ms,
                "snapshots_taken": self.taken,
                "snapshot_stall_ms_last": round(self.last_stall_ms, 3),
                "snapshot_stall_ms_max": round(self.longest_stall_ms, 3)}

