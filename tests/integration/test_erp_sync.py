"""The ERP sync job against real Redis journals and a scripted ERP: exactly once, gently."""

from __future__ import annotations

import asyncio
import random
import time

import redis

from engine.circuit_breaker import BreakerState
from engine.config import ErpSyncConfig
from engine.erp_client import ErpRejected, ErpRetryLater
from engine.erp_sync import READER, ErpSync
from engine.journal_store import JournalStore
from engine.model import Commit, Movement, MovementType, Reserve, ReserveLine
from tests.integration.erp_fakes import JournaledPartitions, ScriptedErp, down

SKUS = [f"sku-{n}" for n in range(12)]
LOCATIONS = ["dc-1", "store-7"]
FAST = dict(window_s=0.05, idle_poll_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.05,
            breaker_failures_max=3, breaker_recovery_s=0.3, batch_lines_max=5)


def movements(count: int, source: str = "pos", seed: int = 7) -> list[Movement]:
    """Random receipts, sales and adjustments over a few SKU-locations."""
    rng = random.Random(seed)
    kinds = [MovementType.RECEIPT, MovementType.SALE, MovementType.ADJUSTMENT]
    made = []
    for n in range(count):
        kind = rng.choice(kinds)
        quantity = rng.choice([-2, 3]) if kind is MovementType.ADJUSTMENT else rng.randint(1, 4)
        made.append(Movement(f"{source}-{seed}-{n}", source, kind, rng.choice(SKUS),
                             rng.choice(LOCATIONS), quantity))
    return made


def sync_for(client, prefix, erp, partitions=2, **config) -> ErpSync:
    return ErpSync(client, erp, partitions, ErpSyncConfig(key_prefix=prefix, **{**FAST,
                                                                                 **config}))


async def drain(sync: ErpSync, timeout_s: float = 30.0) -> None:
    """Run rounds until the journals hold nothing the reader has not checkpointed."""
    sync.register()
    deadline = time.monotonic() + timeout_s
    while await sync.round() or sync.backlog_commands():
        assert time.monotonic() < deadline, "the sync job did not drain in time"


def on_hand_deltas(applied: list[Movement]) -> dict:
    """Net on_hand change per SKU-location of receipts, sales and adjustments, zeros left out."""
    sign = {MovementType.RECEIPT: 1, MovementType.SALE: -1, MovementType.ADJUSTMENT: 1}
    totals: dict = {}
    for movement in applied:
        item = (movement.sku, movement.location)
        totals[item] = totals.get(item, 0) + sign[movement.type] * movement.quantity
    return {item: total for item, total in totals.items() if total}


async def test_sync_posts_net_changes_once_and_checkpoints(client, prefix):
    """Every non-ERP change reaches the ERP exactly once, netted, and the readers advance."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    sync = sync_for(client, prefix, erp)
    sync.register()
    applied = movements(300)
    engine.apply(applied)
    await drain(sync)
    assert {k: v for k, v in erp.on_hand_by_item.items() if v} == on_hand_deltas(applied)
    assert sync.stats.lines_posted <= len(SKUS) * len(LOCATIONS) * 2
    for p in range(2):
        store = JournalStore(client, p, prefix)
        assert store.readers()[READER] == store.last_seq()


async def test_sync_never_echoes_the_erps_own_movements(client, prefix):
    """Movements from source erp change the engine but nothing is posted for them."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    sync = sync_for(client, prefix, erp)
    sync.register()
    engine.apply(movements(50, source="erp"))
    await drain(sync)
    assert erp.calls == [] and any(engine.on_hand().values())
    from_wms = movements(20, source="wms", seed=8)
    engine.apply(from_wms)
    await drain(sync)
    assert {k: v for k, v in erp.on_hand_by_item.items() if v} == on_hand_deltas(from_wms)


async def test_sync_sends_commits_as_committed_deltas(client, prefix):
    """A committed cart reaches the ERP as committed, a hold alone not at all."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    sync = sync_for(client, prefix, erp)
    sync.register()
    engine.apply([Movement("r1", "erp", MovementType.RECEIPT, "sku-1", "dc-1", 10)])
    engine.apply_to("sku-1", [Reserve("k1", "res-1", (ReserveLine("sku-1", "dc-1", 3),)),
                              Reserve("k2", "res-2", (ReserveLine("sku-1", "dc-1", 2),))])
    engine.apply_to("sku-1", [Commit("res-1", "c1", "order-1")])
    await drain(sync)
    assert erp.committed_by_item == {("sku-1", "dc-1"): 3}
    assert erp.on_hand_by_item == {("sku-1", "dc-1"): 0}


async def test_sync_outage_opens_breaker_then_drains_everything_once(client, prefix):
    """While the ERP fails the breaker opens and nothing is lost; afterwards all arrives once."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    erp.script = down(8)
    sync = sync_for(client, prefix, erp)
    sync.register()
    engine.apply(movements(200))
    stop = asyncio.Event()
    running = asyncio.create_task(sync.run(stop))
    deadline = time.monotonic() + 20
    while sync.breaker.opened_total == 0:
        assert time.monotonic() < deadline, "the breaker never opened"
        await asyncio.sleep(0.01)
    engine.apply(movements(200, seed=9))  # the backlog grows while the ERP is down
    while sync.backlog_commands():
        assert time.monotonic() < deadline, "the backlog never drained"
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert sync.breaker_state() is BreakerState.CLOSED
    assert {k: v for k, v in erp.on_hand_by_item.items() if v} == \
        {k: v for k, v in engine.on_hand().items() if v}


async def test_sync_restarted_mid_plan_posts_the_same_keys_and_applies_once(client, prefix):
    """A job stopped after the ERP applied a batch but before it settled: the next job
    resumes the saved plan under the same keys, and the ERP applies nothing twice."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    erp.apply_then_fail = True  # every batch lands, every answer is lost
    first = sync_for(client, prefix, erp)
    first.register()
    engine.apply(movements(100))
    attempt = asyncio.create_task(first.round())
    deadline = time.monotonic() + 10
    while len(erp.bodies) < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    attempt.cancel()  # the job dies; its plan stays in Redis
    await asyncio.gather(attempt, return_exceptions=True)
    keys_before = set(erp.bodies)
    erp.apply_then_fail = False
    second = sync_for(client, prefix, erp)
    stop = asyncio.Event()
    running = asyncio.create_task(second.run(stop))
    while second.backlog_commands():
        assert time.monotonic() < deadline + 20
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert keys_before <= set(erp.bodies)
    assert {k: v for k, v in erp.on_hand_by_item.items() if v} == \
        {k: v for k, v in engine.on_hand().items() if v}


async def test_sync_rate_limited_waits_retry_after_for_every_call(client, prefix):
    """After a 429 with Retry-After 1, no call at all goes out for a second."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    erp.script = [ErpRetryLater("429", retry_after_s=1.0, rate_limited=True)]
    sync = sync_for(client, prefix, erp, in_flight_max=4)
    sync.register()
    engine.apply(movements(200))
    await drain(sync)
    (limited_at, _), (next_at, _) = erp.calls[0], erp.calls[1]
    assert next_at - limited_at >= 1.0
    assert sync.breaker.opened_total == 0 and sync.stats.requests["rate_limited"] == 1


async def test_sync_refused_batch_goes_to_the_erp_dlq_with_the_answer(client, prefix):
    """A batch the ERP refuses as invalid is parked with its answer; the rest goes through."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    erp.script = [ErpRejected(422, '{"error": "lines[0].location: unknown"}')]
    sync = sync_for(client, prefix, erp)
    sync.register()
    engine.apply(movements(100))
    await drain(sync)
    letters = client.xrange(f"{prefix}:erp:dlq")
    assert len(letters) == 1
    fields = letters[0][1]
    assert fields[b"status"] == b"422" and b"lines[0].location" in fields[b"response"]
    assert sync.stats.dead_letters == 1 and sync.backlog_commands() == 0


async def test_sync_second_job_waits_for_the_lease(client, prefix):
    """Two jobs on one engine: the second posts nothing while the first holds the lease."""
    JournaledPartitions(client, prefix, 2)
    first, second = (sync_for(client, prefix, ScriptedErp()) for _ in range(2))
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    deadline = time.monotonic() + 5
    while not client.exists(f"{prefix}:erp:lease"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert not second.state.take_lease(10_000)
    stop.set()
    await running
    assert second.state.take_lease(10_000)


def test_snapshot_never_trims_what_the_sync_job_has_not_drained(client, prefix):
    """With the reader registered, a snapshot trims the journal only up to its checkpoint."""
    engine = JournaledPartitions(client, prefix, 1)
    sync = sync_for(client, prefix, ScriptedErp(), partitions=1)
    sync.register()
    engine.apply(movements(30))
    partition = engine.partitions[0]
    store = JournalStore(client, 0, prefix)
    store.epoch = store.current_epoch()
    from engine import snapshot

    state = partition.host.state
    assert store.save_snapshot(state.seq, snapshot.dump(state), 0)
    assert store.journal_length() == 30 and store.readers()[READER] == 0


async def test_sync_redis_error_mid_plan_resumes_the_plan_not_a_new_window(client, prefix):
    """Redis failing as a batch is marked settled: the job resumes the same plan (the ERP
    drops the repeated key) instead of reading a new window over the same changes."""
    engine = JournaledPartitions(client, prefix, 2)
    erp = ScriptedErp()
    sync = sync_for(client, prefix, erp)
    applied = movements(100)
    engine.apply(applied)
    settle, failures = sync.state.settle, [redis.ConnectionError("Redis went away")]

    def settle_or_fail(index: int) -> None:
        if failures:
            raise failures.pop()
        settle(index)

    sync.state.settle = settle_or_fail
    stop = asyncio.Event()
    running = asyncio.create_task(sync.run(stop))
    deadline = time.monotonic() + 20
    while failures or sync.backlog_commands():
        assert time.monotonic() < deadline, "the sync job did not recover"
        await asyncio.sleep(0.02)
    stop.set()
    await running
    assert {k: v for k, v in erp.on_hand_by_item.items() if v} == on_hand_deltas(applied)
    # Batches in flight at the failure were posted again under their keys, applied once,
    # and every call belongs to the one plan: no second window re-read the changes.
    assert len(erp.calls) > len(erp.bodies)
    assert {key.rsplit("-", 2)[1] for _, key in erp.calls} == {"1"}
