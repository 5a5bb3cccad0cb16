"""JournalStore on the real Redis: ordered appends, fencing, snapshots, trims."""

from __future__ import annotations

import pytest
import redis

from engine import journal_store
from engine.journal_store import Fenced, JournalStore


def entry(seq: int) -> bytes:
    """Opaque entry bytes; the NUL and high bytes check nothing is decoded on the way."""
    return f"entry {seq}".encode() + b"\x00\xff"


def append_each(store: JournalStore, *seqs: int) -> None:
    """Append one entry per seq, each as its own batch."""
    for seq in seqs:
        store.append([(seq, entry(seq))])


@pytest.fixture
def store_for(client, prefix):
    """`store_for(partition)` builds a store under this test's prefix."""
    return lambda partition=0: JournalStore(client, partition, prefix)


@pytest.fixture
def store(store_for) -> JournalStore:
    """A store that has claimed partition 0."""
    store = store_for(0)
    store.claim()
    return store


def test_append_then_entries_after_returns_later_entries_in_order(store):
    """entries_after(seq) yields exactly the entries above seq, oldest first, bytes intact."""
    store.append([(3, entry(3)), (5, entry(5))])
    store.append([(9, entry(9)), (12, entry(12))])

    assert list(store.entries_after(0)) == [entry(3), entry(5), entry(9), entry(12)]
    assert list(store.entries_after(5)) == [entry(9), entry(12)]
    assert list(store.entries_after(4)) == [entry(5), entry(9), entry(12)]
    assert list(store.entries_after(12)) == []
    assert store.last_seq() == 12
    assert store.journal_length() == 4


def test_entries_after_reads_in_chunks_without_losing_or_repeating(store, client, monkeypatch):
    """Chunked reads, including a last chunk that is exactly full, give every entry once."""
    append_each(store, *range(1, 11))
    calls = []
    xrange = client.xrange

    def counted_xrange(*args, **kwargs):
        calls.append(kwargs["count"])
        return xrange(*args, **kwargs)

    monkeypatch.setattr(client, "xrange", counted_xrange)

    for chunk in (1, 3, 5, 10, 2000):
        calls.clear()
        assert list(store.entries_after(0, chunk=chunk)) == [entry(s) for s in range(1, 11)]
        assert len(calls) == 10 // chunk + 1
    with pytest.raises(ValueError):
        list(store.entries_after(0, chunk=0))


def test_append_after_another_store_claims_is_fenced_and_changes_nothing(store_for):
    """Once a second store claims the partition, the first's writes raise Fenced, land nowhere."""
    first, second = store_for(0), store_for(0)
    assert first.claim() == 1
    append_each(first, 1, 2)
    assert second.claim() == 2

    with pytest.raises(Fenced):
        first.append([(3, entry(3)), (4, entry(4))])
    with pytest.raises(Fenced):
        first.save_snapshot(2, b"state at 2", 1_000)

    assert list(second.entries_after(0)) == [entry(1), entry(2)]
    assert second.last_seq() == 2
    assert second.load_snapshot() is None
    second.append([(3, entry(3))])
    assert second.last_seq() == 3


def test_current_epoch_shows_a_later_claim(store_for):
    """current_epoch reads Redis, so a store sees when another has claimed after it."""
    first, second = store_for(0), store_for(0)
    assert first.current_epoch() == 0
    first.claim()
    assert first.current_epoch() == first.epoch == 1

    second.claim()
    assert first.current_epoch() == 2
    assert first.epoch == 1


def test_append_before_claim_is_fenced(store_for):
    """A store that never claimed the partition may not write to it."""
    unclaimed = store_for(0)
    assert unclaimed.epoch == 0

    with pytest.raises(Fenced):
        unclaimed.append([(1, entry(1))])
    assert unclaimed.journal_length() == 0


def test_append_duplicate_id_is_refused_and_changes_nothing(store):
    """A batch reusing or going below the newest seq is refused whole, by Redis itself."""
    append_each(store, 1, 2)

    with pytest.raises(redis.ResponseError):
        store.append([(2, entry(2))])
    with pytest.raises(redis.ResponseError):
        store.append([(1, entry(1)), (3, entry(3))])
    assert list(store.entries_after(0)) == [entry(1), entry(2)]
    assert store.last_seq() == 2


def test_append_batch_out_of_order_is_refused_and_changes_nothing(store):
    """A batch whose own seqs do not increase is refused before its first entry is written."""
    append_each(store, 1)

    with pytest.raises(redis.ResponseError):
        store.append([(3, entry(3)), (5, entry(5)), (5, entry(5))])
    with pytest.raises(redis.ResponseError):
        store.append([(3, entry(3)), (2, entry(2))])
    assert list(store.entries_after(0)) == [entry(1)]
    assert store.last_seq() == 1


def test_save_snapshot_before_journal_reaches_seq_is_refused(store):
    """A snapshot ahead of the journal is refused, stores nothing and trims nothing."""
    append_each(store, 1, 2, 3)

    assert store.save_snapshot(4, b"state at 4", 1_000) is False
    assert store.load_snapshot() is None
    assert store.journal_length() == 3


def test_save_snapshot_older_than_stored_is_refused(store):
    """A snapshot below the stored one is refused: the journal may be trimmed past it."""
    append_each(store, 1, 2, 3)
    assert store.save_snapshot(3, b"state at 3", 1_000) is True

    assert store.save_snapshot(2, b"state at 2", 2_000) is False
    assert store.load_snapshot() == (3, b"state at 3")


def test_save_snapshot_trims_journal_behind_it(store):
    """Entries at or below the snapshot's seq go; later ones, and last_seq, stay."""
    append_each(store, 1, 2, 3, 4, 5)

    assert store.save_snapshot(3, b"state at 3", 1_000) is True
    assert list(store.entries_after(0)) == [entry(4), entry(5)]
    assert store.save_snapshot(5, b"state at 5", 2_000) is True
    assert store.journal_length() == 0
    assert store.last_seq() == 5


def test_save_snapshot_does_not_trim_past_reader_checkpoint(store):
    """Trimming stops after the slowest registered reader's checkpoint."""
    append_each(store, 1, 2, 3, 4, 5, 6)
    store.register_reader("erp-sync", from_seq=0)
    store.checkpoint("erp-sync", 2)
    store.register_reader("feed", from_seq=4)

    assert store.save_snapshot(5, b"state at 5", 1_000) is True
    assert list(store.entries_after(0)) == [entry(s) for s in (3, 4, 5, 6)]
    assert store.load_snapshot() == (5, b"state at 5")


def test_checkpoint_lets_next_snapshot_trim_further(store):
    """A reader moving its checkpoint on, or leaving, lets the next snapshot trim past it."""
    append_each(store, 1, 2, 3, 4, 5, 6)
    store.register_reader("erp-sync", from_seq=0)
    store.register_reader("feed", from_seq=0)
    assert store.save_snapshot(5, b"state at 5", 1_000) is True
    assert store.journal_length() == 6

    store.checkpoint("erp-sync", 4)
    store.checkpoint("feed", 3)
    assert store.save_snapshot(5, b"state at 5", 2_000) is True
    assert list(store.entries_after(0)) == [entry(4), entry(5), entry(6)]

    store.unregister_reader("feed")
    assert store.save_snapshot(6, b"state at 6", 3_000) is True
    assert list(store.entries_after(0)) == [entry(5), entry(6)]
    assert store.readers() == {"erp-sync": 4}


def test_load_snapshot_round_trips_the_stored_bytes(store, client, prefix):
    """load_snapshot gives back the seq and bytes saved, None before any; all fields are set."""
    assert store.load_snapshot() is None
    append_each(store, 1, 2)
    data = bytes(range(256)) * 64

    assert store.save_snapshot(2, data, 1_234) is True
    assert store.load_snapshot() == (2, data)
    stored = client.hgetall(f"{prefix}:{{p0}}:snapshot")
    assert {key: stored[key] for key in (b"seq", b"epoch", b"saved_at_ms", b"chunks")} == {
        b"seq": b"2", b"epoch": b"1", b"saved_at_ms": b"1234", b"chunks": b"1"}


def test_big_snapshot_goes_in_chunks_and_replacing_it_frees_the_old_ones(store, client,
                                                                         monkeypatch, prefix):
    """A snapshot over the chunk size is stored in pieces and read back whole; the next one
    frees the pieces of the one it replaces, and a refused one leaves no piece behind."""
    monkeypatch.setattr(journal_store, "SNAPSHOT_CHUNK_BYTES", 1000)
    append_each(store, 1, 2, 3)
    first, second = bytes(range(256)) * 10, b"x" * 2500
    assert store.save_snapshot(2, first, 1) is True
    assert store.load_snapshot() == (2, first)
    assert store.save_snapshot(3, second, 2) is True
    assert store.load_snapshot() == (3, second)
    assert store.save_snapshot(9, b"not yet", 3) is False
    pieces = sorted(key for key in client.scan_iter(match=f"{prefix}:{{p0}}:snapshot:*"))
    assert len(pieces) == 3 and all(b":3:" in key for key in pieces)
    assert all(client.pttl(key) == -1 for key in pieces)  # kept for good once stored


def test_register_reader_starts_before_oldest_entry_still_there(store):
    """A reader registered without a seq sees every entry still in the journal."""
    store.register_reader("first")
    assert store.readers() == {"first": 0}
    store.unregister_reader("first")
    append_each(store, 1, 2, 3, 4, 5)
    assert store.save_snapshot(2, b"state at 2", 1_000) is True

    store.register_reader("late")
    assert store.readers() == {"late": 2}
    assert list(store.entries_after(store.readers()["late"])) == [entry(3), entry(4), entry(5)]


def test_register_reader_on_trimmed_journal_starts_at_last_seq(store):
    """With every entry trimmed, a new reader starts at the newest seq ever written."""
    append_each(store, 1, 2, 3)
    assert store.save_snapshot(3, b"state at 3", 1_000) is True

    store.register_reader("late")
    assert store.readers() == {"late": 3}


def test_register_reader_again_keeps_its_checkpoint(store):
    """Registering a reader that exists leaves its checkpoint where it was."""
    store.register_reader("erp-sync", from_seq=7)
    store.checkpoint("erp-sync", 9)

    store.register_reader("erp-sync", from_seq=0)
    assert store.readers() == {"erp-sync": 9}


def test_checkpoint_of_unregistered_reader_raises_and_registers_nothing(store):
    """A checkpoint from a reader that is not registered is refused, not recorded."""
    with pytest.raises(KeyError):
        store.checkpoint("ghost", 5)
    assert store.readers() == {}


def test_partitions_keep_separate_journals(store_for):
    """Two partitions under one prefix share no keys."""
    zero, one = store_for(0), store_for(1)
    zero.claim()
    one.claim()
    append_each(zero, 1, 2)
    append_each(one, 1)

    assert list(zero.entries_after(0)) == [entry(1), entry(2)]
    assert list(one.entries_after(0)) == [entry(1)]


def test_connect_builds_client_that_never_retries(client):
    """connect's client answers and has no automatic retry, so no write is ever sent twice."""
    assert client.ping() is True
    pool_kwargs = client.connection_pool.connection_kwargs
    assert pool_kwargs["retry"].get_retries() == 0
    assert pool_kwargs["socket_timeout"] == pytest.approx(2.0)
