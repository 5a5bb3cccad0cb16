"""Group commit: a thread that writes every journal entry queued meanwhile in one Redis call."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from engine.latency_histogram import LatencyHistogram

log = logging.getLogger(__name__)
# One call carries at most this many entries (bounded Lua arguments, bounded latency).
ENTRIES_PER_WRITE_MAX = 256


class JournalDown(Exception):
    """The journal could not be written: nothing from the failed write on is acknowledged."""


class Ticket:
    """Becomes done when its entry, and every entry queued before it, is written or failed."""

    __slots__ = ("_done", "error")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.error: BaseException | None = None

    def done(self) -> bool:
        return self._done.is_set()

    def settle(self, error: BaseException | None = None) -> None:
        self.error = error
        self._done.set()

    def wait(self, timeout_s: float | None = None) -> None:
        """Return once written; raise JournalDown if the write failed or took too long."""
        if not self._done.wait(timeout_s):
            raise JournalDown(f"journal write still pending after {timeout_s}s")
        if self.error is not None:
            raise JournalDown(str(self.error) or type(self.error).__name__) from self.error


WRITTEN = Ticket()
WRITTEN.settle()


class JournalWriter:
    """Writes queued entries in order, all queued ones per call, from one thread.

    The partition applies batch k+1 in memory while batch k's write is in flight, and
    each caller waits on its own ticket, so nobody is answered before their entry is in
    Redis. After a failed write every entry still queued fails too and later entries are
    refused (a gap would break replay) until `reopen`, once the state was rebuilt from
    what Redis really holds.
    """

    def __init__(self, append: Callable[[Sequence[tuple[int, bytes]]], None],
                 on_failure: Callable[[BaseException], None]) -> None:
        self._append = append
        self._on_failure = on_failure
        self._queue: list[tuple[int, bytes, Ticket]] = []
        self._wake = threading.Condition()
        self._failed: BaseException | None = None
        self._closed = False
        self.last_ticket = WRITTEN
        # Each successful group-commit write's round trip to Redis, for operators.
        self.write_latency = LatencyHistogram()
        threading.Thread(target=self._write_forever, name="journal-writer", daemon=True).start()

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    def submit(self, last_seq: int, entry: bytes) -> Ticket:
        """Queue one entry; the returned ticket settles when it is written or has failed."""
        ticket = Ticket()
        with self._wake:
            if self._failed is not None:
                ticket.settle(self._failed)
            else:
                self._queue.append((last_seq, entry, ticket))
                self._wake.notify()
        self.last_ticket = ticket
        return ticket

    def reopen(self) -> None:
        """Accept entries again (the caller has rebuilt its state from the journal)."""
        with self._wake:
            self._failed = None
            self.last_ticket = WRITTEN

    def close(self) -> None:
        """Let the thread end once the queue is written (the partition moved away)."""
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _write_forever(self) -> None:
        while True:
            with self._wake:
                while not self._queue:
                    if self._closed:
                        return
                    self._wake.wait()
                batch = self._queue[:ENTRIES_PER_WRITE_MAX]
                del self._queue[:ENTRIES_PER_WRITE_MAX]
            started = time.perf_counter()
            try:
                self._append([(last_seq, entry) for last_seq, entry, _ in batch])
            except Exception as error:  # Redis gone, timed out, or this actor was fenced
                self._fail(batch, error)
                continue
            self.write_latency.observe(1000 * (time.perf_counter() - started))
            for _, _, ticket in batch:
                ticket.settle()

    def _fail(self, batch: list[tuple[int, bytes, Ticket]], error: BaseException) -> None:
        with self._wake:
            self._failed = error
            batch = batch + self._queue
            self._queue = []
        log.error("journal write failed (%s); %d entries not acknowledged", error, len(batch))
        for _, _, ticket in batch:
            ticket.settle(error)
        self._on_failure(error)
