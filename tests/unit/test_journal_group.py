"""The journal group: a member's entries queued before its write failed are never written
after it reopens (its state was rebuilt without them)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import redis

from engine import journal_group
from engine.journal_group import JournalGroup
from engine.journal_writer import JournalDown
from tests.unit.waiting import WAIT_S, wait_until


class Store:
    """An append that fails while `gone`, or waits at `gate` when one is set."""

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.written: list[int] = []
        self.gone = False
        self.gate: threading.Event | None = None
        self.waiting = threading.Event()

    def append(self, entries: Sequence[tuple[int, bytes]]) -> None:
        if self.gate is not None:
            self.waiting.set()
            assert self.gate.wait(WAIT_S)
        if self.gone:
            raise redis.ConnectionError("gone")
        self.written += [last_seq for last_seq, _ in entries]


def test_entries_queued_before_a_failure_are_not_written_after_reopen(monkeypatch):
    monkeypatch.setattr(journal_group, "ENTRIES_PER_WRITE_MAX", 1)  # one entry per write
    group = JournalGroup(None)
    a_store, b_store = Store(0), Store(1)
    failures = []
    a = group.writer(a_store, failures.append)
    b = group.writer(b_store, lambda error: None)
    b_store.gate = first = threading.Event()
    b.submit(1, b"x0")  # the group's thread waits in this write
    assert b_store.waiting.wait(WAIT_S)
    a.submit(1, b"a1")
    second = threading.Event()
    b.submit(2, b"x1")
    stale = a.submit(2, b"a2")  # applied on a state that the failure of a1 throws away
    a_store.gone = True
    b_store.gate = second
    first.set()
    wait_until(lambda: failures)  # a1 failed; b's next write holds the thread
    a_store.gone = False
    a.reopen()  # the partition rebuilt itself from what Redis holds (without a1)
    second.set()
    with pytest.raises(JournalDown):
        stale.wait(WAIT_S)
    assert a_store.written == []
