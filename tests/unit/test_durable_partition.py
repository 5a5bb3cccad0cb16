"""A durable partition answers a change only once the journal holds it, refuses what it cannot
journal, rebuilds itself when Redis returns, stays fenced for good, and recovers its exact state."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import durable_partition, journal, snapshot
from engine.config import DurabilityConfig
from engine.durable_partition import FENCED, DurablePartition
from engine.journal_store import Fenced
from engine.model import (
    AvailabilityResult,
    GetAvailability,
    ItemRef,
    Movement,
    MovementCode,
    MovementType,
    ReservationState,
    ReservationStatus,
    Unavailable,
)
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import observable, reserve
from tests.unit.test_journal import CONFIG, LOCATIONS, SKUS, T0, commands
from tests.unit.waiting import WAIT_S, Clock, wait_until

SKU, LOC = SKUS[0], LOCATIONS[0]
READ = GetAvailability((ItemRef(SKU, LOC),))
# How long a test watches for something that must not happen.
NOT_HAPPENING_S = 0.2


# ---- an in-memory Redis for one partition -------------------------------------------------


class FakeRedis:
    """What Redis holds for one partition, shared by every FakeStore of it, plus fault switches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch = 0
        self.entries: list[tuple[int, bytes]] = []  # (last_seq, data), oldest first
        self.last_generated = 0  # newest last_seq ever appended; survives trimming
        self.snapshot: tuple[int, bytes, int] | None = None  # (seq, data, saved_at_ms)
        self.appends: list[int] = []  # how many entries each successful append carried
        # Switches: every call raises ConnectionError; an append lands and then Redis goes
        # before the reply; an append waits for this event (a write in flight).
        self.gone = False
        self.goes_after_next_write = False
        self.gate: threading.Event | None = None
        self.in_flight = threading.Event()  # set once an append waits at the gate

    def reachable(self) -> None:
        if self.gone:
            raise redis.ConnectionError("Error 111 connecting to fake Redis. Connection refused.")


class FakeStore:
    """The JournalStore methods a DurablePartition and SnapshotWriter use, with its rules:
    fencing by epoch, ids that must increase, no snapshot beyond the journal, trimming."""

    def __init__(self, fake: FakeRedis) -> None:
        self.fake = fake
        self.epoch = 0

    def claim(self) -> int:
        self.fake.reachable()
        with self.fake.lock:
            self.fake.epoch += 1
            self.epoch = self.fake.epoch
        return self.epoch

    def reclaim(self) -> int:
        self.fake.reachable()
        with self.fake.lock:
            self._check_epoch()
            self.fake.epoch += 1
            self.epoch = self.fake.epoch
        return self.epoch

    def current_epoch(self) -> int:
        self.fake.reachable()
        return self.fake.epoch

    def append(self, entries: Sequence[tuple[int, bytes]]) -> None:
        if not entries:
            return
        fake = self.fake
        fake.reachable()
        if fake.gate is not None:
            fake.in_flight.set()
            assert fake.gate.wait(WAIT_S), "the test never let the write in flight finish"
            fake.reachable()
        with fake.lock:
            self._check_epoch()
            ids = [last_seq for last_seq, _ in entries]
            if ids[0] <= fake.last_generated or any(b <= a for a, b in zip(ids, ids[1:])):
                raise redis.ResponseError("ERR The ID specified in XADD is equal or smaller "
                                          "than the target stream top item")
            fake.entries.extend(entries)
            fake.last_generated = ids[-1]
            fake.appends.append(len(entries))
        if fake.goes_after_next_write:  # the write landed; its reply is lost
            fake.goes_after_next_write, fake.gone = False, True
            raise redis.ConnectionError("Connection reset by peer")

    def entries_after(self, seq: int) -> Iterator[bytes]:
        self.fake.reachable()
        with self.fake.lock:
            rows = [data for last_seq, data in self.fake.entries if last_seq > seq]
        yield from rows

    def last_seq(self) -> int:
        self.fake.reachable()
        return self.fake.last_generated

    def save_snapshot(self, seq: int, data: bytes, saved_at_ms: int) -> bool:
        fake = self.fake
        fake.reachable()
        with fake.lock:
            self._check_epoch()
            stored_seq = fake.snapshot[0] if fake.snapshot else 0
            if fake.last_generated < seq or seq < stored_seq:
                return False
            fake.snapshot = (seq, data, saved_at_ms)
            fake.entries = [(last_seq, e) for last_seq, e in fake.entries if last_seq > seq]
        return True

    def load_snapshot(self) -> tuple[int, bytes] | None:
        self.fake.reachable()
        saved = self.fake.snapshot
        return None if saved is None else (saved[0], saved[1])

    def snapshot_seq(self) -> int:
        self.fake.reachable()
        return self.fake.snapshot[0] if self.fake.snapshot else 0

    def _check_epoch(self) -> None:
        if self.fake.epoch != self.epoch:
            raise Fenced(f"FENCED partition epoch is {self.fake.epoch}, "
                         f"this writer holds {self.epoch}")


# ---- helpers ------------------------------------------------------------------------------


@pytest.fixture
def fast_retry(monkeypatch):
    """A partition cut off from Redis tries again every 10 ms instead of every 0.5 s."""
    monkeypatch.setattr(durable_partition, "RETRY_INTERVAL_S", 0.01)


def recovered(fake: FakeRedis, clock: Clock, every: int = 10**9,
              interval_s: float = 300.0) -> DurablePartition:
    """A partition that claimed `fake` (fencing earlier ones) and rebuilt itself from it."""
    partition = DurablePartition(
        0, FakeStore(fake), CONFIG,
        DurabilityConfig(snapshot_every_commands=every, snapshot_interval_s=interval_s),
        clock_ms=clock)
    partition.recover()
    return partition


def journaled_state(fake: FakeRedis) -> PartitionState:
    """What the snapshot and journal in `fake` hold, read without claiming the partition."""
    saved = fake.snapshot
    state = snapshot.load(saved[1], CONFIG) if saved else PartitionState(CONFIG)
    journal.replay(state, [data for _, data in fake.entries])
    return state


def receipt(quantity: int, event_id: str = "receipt-1") -> Movement:
    return Movement(event_id, "wms", MovementType.RECEIPT, SKU, LOC, quantity)


def hold(key: str, quantity: int, **fields):
    return reserve(key, (SKU, LOC, quantity), **fields)


def reserved(partition: DurablePartition) -> int:
    return partition.host.state.quantities_of(SKU, LOC)["reserved"]


# ---- journaled before answered, and recovered -----------------------------------------


def test_apply_returns_only_once_the_journal_holds_the_change():
    """Each answer arrives with its entry in the journal; a partition recovered from it has
    the same state, and a retried key answers the original reservation id."""
    fake, clock = FakeRedis(), Clock(T0)
    live = recovered(fake, clock)
    [received] = live.apply([receipt(10)])
    assert received.code is MovementCode.APPLIED
    assert fake.last_generated == live.host.state.seq == 1
    [held] = live.apply([hold("cart-1", 3)])
    assert held.status is ReservationStatus.HELD
    assert fake.last_generated == live.host.state.seq == 2

    clock.now_ms += 1_000
    rebuilt = recovered(fake, clock)
    assert rebuilt.host.state.seq == 2
    assert observable(rebuilt.host.state) == observable(live.host.state)
    before = observable(rebuilt.host.state)
    [again] = rebuilt.apply([hold("cart-1", 3, rid="res-minted-for-the-retry")])
    assert again.reservation_id == held.reservation_id == "res-cart-1"
    assert observable(rebuilt.host.state) == before  # the retry held nothing more


def test_pipelined_batch_is_applied_while_the_previous_write_is_in_flight():
    """Batch 2 is applied (numbered after batch 1) while batch 1's write is blocked, but no
    answer, not even a later read, returns before that write completes."""
    fake, clock = FakeRedis(), Clock(T0)
    partition = recovered(fake, clock)
    partition.apply([receipt(10)])
    fake.gate = threading.Event()
    first = partition.start([hold("cart-1", 3)])
    assert fake.in_flight.wait(WAIT_S)
    second = partition.start([hold("cart-2", 2), hold("cart-3", 1)])
    third = partition.start([hold("cart-4", 1)])
    read = partition.start([READ])
    assert partition.host.state.seq == 5  # all applied in memory, in order
    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(applied.results) for applied in (first, second, third, read)]
        done, _ = wait(answers, timeout=NOT_HAPPENING_S)
        assert not done
        assert fake.last_generated == 1
        fake.gate.set()
        results = [answer.result(WAIT_S) for answer in answers]
    assert [r.status for batch in results[:3] for r in batch] == [ReservationStatus.HELD] * 4
    assert results[3][0].items[0].reserved == 7
    # Batch 1 alone, then batches 2 and 3, queued meanwhile, in one append (group commit).
    assert fake.appends == [1, 1, 2]
    assert observable(journaled_state(fake)) == observable(partition.host.state)


# ---- Redis gone, and back ---------------------------------------------------------------


def test_redis_gone_refuses_changes_answers_reads_and_rebuilds_when_back(fast_retry):
    """With Redis gone a change is Unavailable, later ones are refused unapplied while reads
    answer from memory; once Redis is back the partition rebuilds from the journal alone."""
    fake, clock = FakeRedis(), Clock(T0)
    partition = recovered(fake, clock)
    partition.apply([receipt(10)])
    partition.apply([hold("cart-1", 3)])
    journaled, durable_view = list(fake.entries), observable(partition.host.state)

    fake.gone = True
    [refused] = partition.apply([hold("cart-2", 4)])
    assert isinstance(refused, Unavailable)
    assert wait_until(lambda: partition.status()["journal"] != "ok")
    assert "ConnectionError" in partition.status()["journal"]
    in_memory, seq = observable(partition.host.state), partition.host.state.seq
    [refused_again, read] = partition.apply([hold("cart-3", 1), READ])
    assert isinstance(refused_again, Unavailable)
    assert read == partition.host.state.query([(SKU, LOC)])  # answered from memory
    assert (observable(partition.host.state), partition.host.state.seq) == (in_memory, seq)
    assert fake.entries == journaled

    fake.gone = False
    assert wait_until(lambda: partition.status()["journal"] == "ok")
    assert observable(partition.host.state) == durable_view  # the failed batch is gone
    assert observable(partition.host.state) == observable(journaled_state(fake))
    [held] = partition.apply([hold("cart-2", 4)])
    assert held.status is ReservationStatus.HELD
    assert fake.last_generated == partition.host.state.seq
    assert observable(journaled_state(fake)) == observable(partition.host.state)


def test_change_whose_reply_was_lost_is_found_by_its_retry(fast_retry):
    """A write that reached Redis just before it went is answered Unavailable; the rebuilt
    partition holds it, and a retry with the same key gets the original answer."""
    fake, clock = FakeRedis(), Clock(T0)
    partition = recovered(fake, clock)
    partition.apply([receipt(10)])
    fake.goes_after_next_write = True
    [refused] = partition.apply([hold("cart-1", 3)])
    assert isinstance(refused, Unavailable)
    assert wait_until(lambda: partition.status()["journal"] != "ok")
    fake.gone = False
    assert wait_until(lambda: partition.status()["journal"] == "ok")
    assert reserved(partition) == 3
    [retried] = partition.apply([hold("cart-1", 3, rid="res-minted-for-the-retry")])
    assert (retried.status, retried.reservation_id) == (ReservationStatus.HELD, "res-cart-1")
    assert reserved(partition) == 3


def test_snapshot_begun_before_a_failed_write_can_never_be_stored_after_the_rebuild(
        fast_retry):
    """A snapshot child forked while a write was in flight holds that write's change; once
    the write failed and the partition rebuilt, other changes take its sequence numbers, so
    the child's old epoch is fenced and its stale state never becomes the snapshot."""
    fake, clock = FakeRedis(), Clock(T0)
    partition = recovered(fake, clock)
    fake.gone = True
    [refused] = partition.apply([receipt(10)])  # seq 1 in memory, never journaled
    assert isinstance(refused, Unavailable)
    child = FakeStore(fake)  # what a child forked at seq 1 writes with: the old epoch
    child.epoch = partition.status()["epoch"]
    stale = snapshot.dump(partition.host.state)
    fake.gone = False
    assert wait_until(lambda: partition.status()["journal"] == "ok")
    partition.apply([receipt(99, "receipt-2")])  # takes seq 1 now, and is acknowledged
    with pytest.raises(Fenced):
        child.save_snapshot(1, stale, clock.now_ms)
    assert fake.snapshot is None
    assert journaled_state(fake).quantities_of(SKU, LOC)["on_hand"] == 99


# ---- fencing ----------------------------------------------------------------------------


def test_fenced_partition_refuses_for_good_and_its_successor_has_its_state(fast_retry):
    """Once a newer partition claims the store, the older one's change is Unavailable and
    never journaled, it answers nothing from then on, and the newer one has its state."""
    fake, clock = FakeRedis(), Clock(T0)
    old = recovered(fake, clock)
    old.apply([receipt(10)])
    old.apply([hold("cart-1", 3)])
    new = recovered(fake, clock)
    assert (old.status()["epoch"], new.status()["epoch"]) == (1, 2)
    assert observable(new.host.state) == observable(old.host.state)
    journaled, successor_view = list(fake.entries), observable(new.host.state)

    [refused] = old.apply([hold("cart-2", 4)])
    assert isinstance(refused, Unavailable) and "fenced" in refused.reason.lower()
    assert wait_until(lambda: old.status()["journal"] == FENCED)
    answers = old.apply([hold("cart-3", 1), READ])
    assert all(isinstance(answer, Unavailable) for answer in answers)
    assert not wait_until(lambda: old.status()["journal"] != FENCED, NOT_HAPPENING_S)
    assert fake.entries == journaled
    assert observable(new.host.state) == successor_view

    [held] = new.apply([hold("cart-2", 4)])
    assert held.status is ReservationStatus.HELD
    assert reserved(new) == 7
    assert observable(journaled_state(fake)) == observable(new.host.state)


# ---- ticks: snapshots and expiry --------------------------------------------------------


def test_tick_snapshots_after_n_commands_and_recovery_from_it_equals_the_live_state():
    """A tick after snapshot_every_commands commands stores a snapshot (trimming the journal);
    snapshot plus the entries after it recover the live state."""
    fake, clock = FakeRedis(), Clock(T0)
    live = recovered(fake, clock, every=3)
    live.apply([receipt(10)])
    live.apply([hold("cart-1", 2)])
    live.tick()
    assert fake.snapshot is None  # two commands: not due yet
    live.apply([hold("cart-2", 1)])
    live.tick()
    assert fake.snapshot[0] == 3 and live.status()["snapshots_taken"] == 1
    assert fake.entries == []
    live.apply([hold("cart-3", 1)])

    rebuilt = recovered(fake, clock)
    assert rebuilt.host.state.seq == live.host.state.seq == 4
    assert observable(rebuilt.host.state) == observable(live.host.state)


def test_no_snapshot_is_due_when_nothing_changed():
    """Past the snapshot interval a tick stores a new snapshot only if a command came in."""
    fake, clock = FakeRedis(), Clock(T0)
    live = recovered(fake, clock, every=2, interval_s=10)
    live.apply([receipt(10)])
    live.apply([receipt(5, "receipt-2")])  # movements only: no hold falls due meanwhile
    live.tick()
    assert fake.snapshot[0] == 2
    clock.now_ms += 20_000  # past the interval, short of the idle housekeeping sweep
    live.tick()
    assert (live.status()["snapshots_taken"], fake.snapshot[0]) == (1, 2)
    assert live.host.state.seq == 2
    live.apply([receipt(1, "receipt-3")])
    clock.now_ms += 20_000
    live.tick()  # a single command, but the interval has passed
    assert (live.status()["snapshots_taken"], fake.snapshot[0]) == (2, 3)


def test_tick_expires_due_holds_and_journals_the_expiry():
    """A tick past a hold's TTL expires it, the expiry is journaled, and it stays expired in
    a recovered partition."""
    fake, clock = FakeRedis(), Clock(T0)
    live = recovered(fake, clock)
    live.apply([receipt(10)])
    live.apply([hold("cart-1", 3)])  # CONFIG's default TTL: 30 s
    clock.now_ms += 29_000
    live.tick()
    assert (live.host.state.seq, reserved(live)) == (2, 3)
    clock.now_ms += 2_000
    live.tick()
    assert live.host.state.reservations.get("res-cart-1").state is ReservationState.EXPIRED
    assert reserved(live) == 0
    assert live.host.state.seq == 3
    assert wait_until(lambda: fake.last_generated == 3)  # the timer thread waits for no one

    rebuilt = recovered(fake, clock)
    assert rebuilt.host.state.reservations.get("res-cart-1").state is ReservationState.EXPIRED
    assert observable(rebuilt.host.state) == observable(live.host.state)


# ---- the property -----------------------------------------------------------------------


@settings(max_examples=30)
@given(data=st.data())
def test_partition_recovered_from_snapshot_and_journal_equals_the_live_one(data):
    """Random batches journaled, ticks (sweeps, snapshots) at random points: a partition
    recovered from the store is the live one, observably and byte for byte."""
    fake, clock = FakeRedis(), Clock(T0)
    live = recovered(fake, clock, every=data.draw(st.integers(1, 20)))
    live.apply([Movement(f"seed-{sku}-{location}", "wms", MovementType.RECEIPT, sku, location,
                         5) for sku in SKUS for location in LOCATIONS])
    reservation_ids: list[str] = []
    for _ in range(data.draw(st.integers(1, 8))):
        batch = data.draw(st.lists(commands(reservation_ids), min_size=1, max_size=12))
        clock.now_ms += data.draw(st.sampled_from([0, 1_000, 6_000, 31_000]))
        answers = live.apply(batch)
        assert not any(isinstance(answer, Unavailable) for answer in answers)
        if data.draw(st.booleans()):
            live.tick()
    # A tick's expiry is written behind its back: claiming before then would fence that write.
    assert wait_until(lambda: fake.last_generated == live.host.state.seq)
    rebuilt = recovered(fake, clock)
    assert rebuilt.host.state.seq == live.host.state.seq
    assert observable(rebuilt.host.state) == observable(live.host.state)
    assert snapshot.dump(rebuilt.host.state) == snapshot.dump(live.host.state)


def test_read_only_batch_takes_no_sequence_number_and_writes_nothing():
    """A batch of reads is answered without a journal entry."""
    fake, clock = FakeRedis(), Clock(T0)
    partition = recovered(fake, clock)
    partition.apply([receipt(10)])
    [read] = partition.apply([READ])
    assert isinstance(read, AvailabilityResult) and read.items[0].on_hand == 10
    assert (partition.host.state.seq, fake.appends) == (1, [1])
