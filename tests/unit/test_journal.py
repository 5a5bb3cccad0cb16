"""A snapshot plus the journal entries after it rebuilds exactly the live partition."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import journal, snapshot
from engine.config import PartitionConfig
from engine.model import (
    Commit,
    Expire,
    GetAvailability,
    ItemRef,
    Movement,
    MovementType,
    Release,
    Reserve,
    ReserveLine,
)
from engine.partition_state import PartitionState

T0 = 1_700_000_000_000
SKUS = ("sku-a", "sku-b", "sku-c")
LOCATIONS = ("dc-1", "store-2")
KEYS = tuple(f"key-{n}" for n in range(10))  # few keys, so retries and conflicts happen
CONFIG = PartitionConfig(hold_ttl_seconds_default=30, vectorized_run_min=2,
                         movement_history_entries=16)

lines = st.lists(st.builds(ReserveLine, st.sampled_from(SKUS), st.sampled_from(LOCATIONS),
                           st.integers(1, 4)),
                 min_size=1, max_size=2, unique_by=lambda line: (line.sku, line.location))


@st.composite
def commands(draw, reservation_ids: list[str]):
    kind = draw(st.sampled_from(["reserve", "reserve", "commit", "release", "movement",
                                 "expire", "read"]))
    key = draw(st.sampled_from(KEYS))
    if kind == "reserve":
        reservation_ids.append(f"r0-{len(reservation_ids)}")
        return Reserve(key, reservation_ids[-1], tuple(draw(lines)),
                       draw(st.sampled_from([0, 5])), draw(st.booleans()))
    if kind in ("commit", "release"):
        reservation_id = draw(st.sampled_from(reservation_ids or ["r0-none"]))
        return Commit(reservation_id, key) if kind == "commit" else Release(reservation_id, key)
    if kind == "movement":
        movement_type = draw(st.sampled_from([t for t in MovementType
                                              if t is not MovementType.ADJUSTMENT]))
        return Movement(key, "wms", movement_type, draw(st.sampled_from(SKUS)), "dc-1",
                        draw(st.integers(1, 6)),
                        draw(st.sampled_from([0, T0 - 5_000, T0 + 3_000])),
                        destination_location="store-2")
    if kind == "expire":
        return Expire()
    return GetAvailability((ItemRef("sku-a", "dc-1"),))


def seeded_state() -> PartitionState:
    state = PartitionState(CONFIG)
    state.load_items([sku for sku in SKUS for _ in LOCATIONS], list(LOCATIONS) * len(SKUS),
                     [5] * (len(SKUS) * len(LOCATIONS)))
    return state


def apply_and_journal(state: PartitionState, batch: list, now_ms: int) -> bytes | None:
    """What an actor does: apply the batch, then write one entry for it (none for reads)."""
    first_seq = state.seq + 1
    state.apply(batch, now_ms)
    if state.seq < first_seq:
        return None
    return journal.encode(batch, now_ms, first_seq, state.seq)


@given(st.data())
def test_snapshot_plus_journal_rebuilds_the_live_state(data):
    """Load the snapshot taken at any point, replay every entry: the very same state."""
    live, reservation_ids = seeded_state(), []
    snapshots = [(0, snapshot.dump(live))]
    entries, now_ms = [], T0
    for _ in range(data.draw(st.integers(1, 12))):
        batch = data.draw(st.lists(commands(reservation_ids), min_size=1, max_size=20))
        now_ms += data.draw(st.sampled_from([0, 1_000, 6_000, 31_000]))
        entry = apply_and_journal(live, batch, now_ms)
        if entry is not None:
            entries.append(entry)
        snapshots.append((len(entries), snapshot.dump(live)))
    _, taken = data.draw(st.sampled_from(snapshots))
    rebuilt = snapshot.load(taken)
    journal.replay(rebuilt, entries)  # entries already in the snapshot are skipped
    assert snapshot.dump(rebuilt) == snapshot.dump(live)
    assert rebuilt.seq == live.seq


def test_replay_refuses_a_gap_and_stops_there():
    """A missing entry is reported, not papered over: the state stops before the gap."""
    state = seeded_state()
    entries = [apply_and_journal(state, [Reserve(f"k{n}", f"r0-{n}",
                                                 (ReserveLine("sku-a", "dc-1", 1),))], T0)
               for n in range(3)]
    rebuilt = seeded_state()
    with pytest.raises(journal.JournalGap):
        journal.replay(rebuilt, [entries[0], entries[2]])
    assert rebuilt.seq == 1
    assert rebuilt.quantities_of("sku-a", "dc-1")["reserved"] == 1


def test_entry_round_trips_and_leaves_reads_out():
    """An entry decodes to the batch's commands (reads dropped), time and sequence numbers."""
    batch = [Reserve("k", "r0-1", (ReserveLine("sku-a", "dc-1", 2),)),
             GetAvailability((ItemRef("sku-a", "dc-1"),)), Expire()]
    decoded = journal.decode(journal.encode(batch, T0, 7, 8))
    assert decoded == journal.JournalBatch(7, 8, T0, (batch[0], batch[2]))
