"""The journal writer sends every entry queued during a write in the next single append, and
after a failed write fails everything queued and refuses more until reopened."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
import redis

from engine.journal_writer import JournalDown, JournalWriter
from tests.unit.waiting import WAIT_S, wait_until


class GatedAppend:
    """An append whose first call blocks until `release` (a write in flight), then may fail."""

    def __init__(self, first_call_fails: bool = False) -> None:
        self.calls: list[list[tuple[int, bytes]]] = []
        self.first_call_entered = threading.Event()
        self.release = threading.Event()
        self._first_call_fails = first_call_fails

    def __call__(self, entries: Sequence[tuple[int, bytes]]) -> None:
        self.calls.append(list(entries))
        if len(self.calls) == 1:
            self.first_call_entered.set()
            assert self.release.wait(WAIT_S), "the test never released the first write"
            if self._first_call_fails:
                raise redis.ConnectionError("Connection reset by peer")


def entry(seq: int) -> tuple[int, bytes]:
    return seq, f"entry-{seq}".encode()


def test_entries_queued_during_a_write_go_together_in_the_next_append():
    """Group commit: entries submitted while a write is in flight are one append call, and
    none of their tickets settles before it."""
    append, failures = GatedAppend(), []
    writer = JournalWriter(append, failures.append)
    first = writer.submit(*entry(1))
    assert append.first_call_entered.wait(WAIT_S)
    queued = [writer.submit(*entry(seq)) for seq in (2, 3, 4)]
    assert writer.last_ticket is queued[-1]
    assert not any(ticket.done() for ticket in (first, *queued))

    append.release.set()
    for ticket in (first, *queued):
        ticket.wait(WAIT_S)  # raises JournalDown if it failed or never settled
    assert append.calls == [[entry(1)], [entry(2), entry(3), entry(4)]]
    assert writer.last_ticket.done()
    assert failures == []


def test_failed_write_fails_every_queued_ticket_and_refuses_until_reopened():
    """After a failed append, it and every entry queued behind it fail unsent, submit refuses
    at once (a gap would break replay), and reopen accepts entries again."""
    append, failures = GatedAppend(first_call_fails=True), []
    writer = JournalWriter(append, failures.append)
    first = writer.submit(*entry(1))
    assert append.first_call_entered.wait(WAIT_S)
    queued = [writer.submit(*entry(seq)) for seq in (2, 3)]

    append.release.set()
    for ticket in (first, *queued):
        with pytest.raises(JournalDown, match="Connection reset"):
            ticket.wait(WAIT_S)
    assert wait_until(lambda: failures)
    assert isinstance(failures[0], redis.ConnectionError) and writer.failed is failures[0]
    refused = writer.submit(*entry(2))
    assert refused.done() and writer.last_ticket is refused
    with pytest.raises(JournalDown):
        refused.wait(0)
    assert append.calls == [[entry(1)]]  # nothing queued was sent after the failure

    writer.reopen()  # the caller rebuilt its state from the journal
    assert writer.failed is None and writer.last_ticket.done()
    writer.submit(*entry(2)).wait(WAIT_S)
    assert append.calls == [[entry(1)], [entry(2)]]
    assert len(failures) == 1
