"""When a partition's snapshot is due, and writing it from a forked child so nothing stalls."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable

from engine import snapshot
from engine.config import DurabilityConfig
from engine.journal_store import JournalStore
from engine.journal_writer import Ticket
from engine.partition_state import PartitionState

log = logging.getLogger(__name__)
# A child gives up if the journal has not reached its snapshot's seq by then; one still
# running this much later is killed (a hung child would stop snapshots for good).
CHILD_DEADLINE_S = 30.0
CHILD_GRACE_S = 300.0


class SnapshotWriter:
    """Writes one snapshot at a time: in a forked child (the actor), or inline (unit tests).

    Forking is how Redis itself saves: the child sees the state frozen at the instant of
    the fork through copy-on-write pages and serializes it at leisure, so the partition
    stalls only for the fork itself (page tables, a few ms per GB) instead of for a whole
    msgpack dump. The child stores the snapshot only once the journal holds its seq,
    and fenced by the epoch, so a snapshot never holds a change the journal does not.
    """

    def __init__(self, store: JournalStore,
                 child_store: Callable[[], JournalStore] | None = None) -> None:
        self._store = store
        # A fresh connection for the child: the parent's may be mid-call in another thread.
        self._child_store = child_store
        self._child: tuple[int, int, int, float] | None = None  # pid, seq, at_ms, started
        self.saved_seq = 0
        self.saved_at_ms = 0
        self.taken = 0
        self.last_stall_ms = 0.0
        self.longest_stall_ms = 0.0

    @property
    def forks(self) -> bool:
        return self._child_store is not None

    def saved(self, seq: int, at_ms: int) -> None:
        self.saved_seq, self.saved_at_ms = seq, at_ms

    def due(self, seq: int, now_ms: int, durability: DurabilityConfig) -> bool:
        if self._child is not None or seq <= self.saved_seq:
            return False
        return (seq - self.saved_seq >= durability.snapshot_every_commands
                or now_ms - self.saved_at_ms >= 1000 * durability.snapshot_interval_s)

    def start(self, state: PartitionState, now_ms: int, journaled: Ticket) -> None:
        """Snapshot `state` as it is now; `journaled` settles once the journal holds it.

        Called with the partition's lock held, so the state is between two batches.
        """
        started = time.perf_counter()
        if not self.forks:
            journaled.wait()
            if self._store.save_snapshot(state.seq, snapshot.dump(state), now_ms):
                self._record(state.seq, now_ms)
            return
        pid = os.fork()
        if pid == 0:
            _write_in_child(self._child_store, state, now_ms)
        self.last_stall_ms = 1000 * (time.perf_counter() - started)
        self.longest_stall_ms = max(self.longest_stall_ms, self.last_stall_ms)
        self._child = (pid, state.seq, now_ms, time.monotonic())

    def finish_if_done(self) -> None:
        """Reap a finished child and take note of the snapshot it saved."""
        if self._child is None:
            return
        pid, seq, at_ms, started = self._child
        if time.monotonic() - started > CHILD_DEADLINE_S + CHILD_GRACE_S:
            log.error("snapshot child %s for seq %s is stuck; killing it", pid, seq)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: Redis says whether it saved
            succeeded = self._store.snapshot_seq() >= seq
        else:
            if not done:
                return
            succeeded = os.waitstatus_to_exitcode(status) == 0
        self._child = None
        if succeeded:
            self._record(seq, at_ms)
        else:
            log.warning("snapshot of seq %s was not saved (its child failed)", seq)

    def _record(self, seq: int, at_ms: int) -> None:
        self.saved(seq, at_ms)
        self.taken += 1

    def status(self) -> dict:
        return {"snapshot_seq": self.saved_seq, "snapshot_at_ms": self.saved_at_ms,
                "snapshots_taken": self.taken,
                "snapshot_stall_ms_last": round(self.last_stall_ms, 3),
                "snapshot_stall_ms_max": round(self.longest_stall_ms, 3)}


def _write_in_child(child_store: Callable[[], JournalStore], state: PartitionState,
                    now_ms: int) -> None:
    """In the forked child: dump, wait for the journal to reach seq, store, exit."""
    code = 1
    try:
        data = snapshot.dump(state)
        store = child_store()
        deadline = time.monotonic() + CHILD_DEADLINE_S
        # Upload only once the journal holds the state: a refused upload is wasted work.
        while store.last_seq() < state.seq and time.monotonic() < deadline:
            time.sleep(0.005)
        code = 0 if store.save_snapshot(state.seq, data, now_ms) else 1
    except BaseException:
        traceback.print_exc(file=sys.stderr)
    finally:
        os._exit(code)  # never run the parent's exit handlers (Ray's) in the child
