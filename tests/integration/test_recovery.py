"""A partition rebuilt from its Redis snapshot and journal equals the live one it came from."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import snapshot
from engine.config import DurabilityConfig
from engine.durable_partition import DurablePartition
from engine.journal_store import JournalStore, connect, forget_keys
from engine.model import Movement, MovementType
from loadtest.bench_durability import build_partition
from tests.integration.conftest import REDIS_URL
from tests.unit.test_journal import CONFIG, LOCATIONS, SKUS, T0, commands
from tests.unit.waiting import Clock


@pytest.fixture
def prefix():
    """A fresh key prefix, its keys deleted afterwards."""
    name = f"recovery-{uuid.uuid4().hex[:12]}"
    yield name
    forget_keys(REDIS_URL, name)


def durable(prefix: str, clock: Clock, every: int = 10**9) -> DurablePartition:
    store = JournalStore(connect(REDIS_URL), 0, prefix)
    return DurablePartition(0, store, CONFIG, DurabilityConfig(snapshot_every_commands=every),
                            clock_ms=clock)


@settings(max_examples=40)
@given(data=st.data())
def test_snapshot_plus_journal_in_redis_rebuilds_the_live_partition(data):
    """Random commands journaled to Redis, snapshots at random points: a partition recovered
    from Redis is the live one, byte for byte."""
    name = f"recovery-prop-{uuid.uuid4().hex[:12]}"
    try:
        clock = Clock(T0)
        live = durable(name, clock, every=data.draw(st.integers(1, 30)))
        live.recover()
        live.apply([Movement(f"seed-{sku}-{location}", "wms", MovementType.RECEIPT, sku,
                             location, 5) for sku in SKUS for location in LOCATIONS])
        reservation_ids: list[str] = []
        for _ in range(data.draw(st.integers(1, 12))):
            batch = data.draw(st.lists(commands(reservation_ids), min_size=1, max_size=20))
            clock.now_ms += data.draw(st.sampled_from([0, 1_000, 6_000, 31_000]))
            live.apply(batch)
            if data.draw(st.booleans()):
                live.tick()  # sweeps, and snapshots when due
        live.apply([])  # waits for the last write (a tick's), which recovering would fence
        rebuilt = durable(name, clock)
        rebuilt.recover()
        assert snapshot.dump(rebuilt.host.state) == snapshot.dump(live.host.state)
    finally:
        forget_keys(REDIS_URL, name)


def test_partition_of_a_million_items_and_100k_entries_recovers_exactly(prefix):
    """1M SKU-locations in a snapshot and 100,000 journaled holds after it: recovery gives
    the very same partition (loadtest/bench_durability.py times it)."""
    live = build_partition(REDIS_URL, prefix, items=1_000_000, entries=100_000)
    store = JournalStore(connect(REDIS_URL), 0, prefix)
    assert store.journal_length() == 100_000
    rebuilt = DurablePartition(0, JournalStore(connect(REDIS_URL), 0, prefix))
    rebuilt.recover()
    # The receipt, the sweep that came with the snapshot, then the 100,000 holds.
    assert rebuilt.host.state.seq == live.host.state.seq == 100_002
    assert snapshot.dump(rebuilt.host.state) == snapshot.dump(live.host.state)
