"""Reconciliation: the ERP's on-hand against the engine's, per SKU-location, and repair.

The engine's figure is what the ERP should hold by now: on_hand rebuilt from the journal
(snapshot plus entries) minus the changes the sync job has not delivered yet. A comparison
counts only if the sync job delivered nothing while it ran; repairs post an ADJUSTMENT from
the ERP's own source onto the events stream, so the sync job never sends it back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterable
from typing import NamedTuple

import redis

from engine import journal, snapshot
from engine.config import ErpSyncConfig
from engine.erp_client import ErpAdapter
from engine.erp_outbox import SyncState
from engine.erp_sync import READER
from engine.journal_store import JournalStore
from engine.partition_state import PartitionState

EVENTS_STREAM = "availability:events"
REASON = "reconciliation"
# The pause outlives the longest comparison by this much; it lapses if reconcile dies.
PAUSE_MARGIN_S = 300.0

Item = tuple[str, str]


class Drift(NamedTuple):
    sku: str
    location: str
    erp_on_hand: int
    engine_on_hand: int
    difference: int  # ERP minus engine


class Comparison(NamedTuple):
    drift: list[Drift]
    items_compared: int
    # False when the sync job delivered something while the comparison ran: the drift
    # may then be in flight rather than real, and nothing is repaired.
    consistent: bool
    sync_position: tuple


def sync_position(client: redis.Redis, stores: list[JournalStore], state: SyncState) -> tuple:
    """Where the sync job is: every checkpoint and its plan. Equal before and after a read
    of the ERP means nothing was delivered in between."""
    return (tuple(store.readers().get(READER) for store in stores), state.progress())


def engine_on_hand(stores: list[JournalStore], checkpoints: Iterable[int | None],
                   erp_sources: tuple[str, ...]) -> dict[Item, int]:
    """On-hand per SKU-location as the ERP should know it once the sync job caught up to the
    checkpoints: the journal's state, less what was changed after them by others than the ERP."""
    expected: dict[Item, int] = {}
    for store, checkpoint in zip(stores, checkpoints, strict=True):
        saved = store.load_snapshot()
        state = snapshot.load(saved[1]) if saved else PartitionState()
        journal.replay(state, store.entries_after(state.seq))
        items, on_hand = state.items, state.items.columns["on_hand"]
        for row in range(items.size):
            key = (items.row_sku[row], items.locations[items.row_location[row]])
            expected[key] = int(on_hand[row])
        if checkpoint is None:
            continue  # no sync job yet: compare with everything journaled
        for raw in store.entries_after(checkpoint):
            entry = journal.decode_ledger(raw)
            if entry.last_seq > state.seq:
                break  # journaled after the state above was read
            for change in entry.ledger_changes:
                if change.source not in erp_sources and change.on_hand_delta:
                    expected[(change.sku, change.location)] -= change.on_hand_delta
    return expected


async def erp_on_hand(erp: ErpAdapter) -> dict[Item, int]:
    return {(item.sku, item.location): item.on_hand async for item in erp.on_hand()}


def compare(erp: dict[Item, int], engine: dict[Item, int]) -> list[Drift]:
    """Every SKU-location whose figures differ (a missing one counts as 0), in order."""
    drift = []
    for sku, location in sorted(erp.keys() | engine.keys()):
        erp_figure, engine_figure = erp.get((sku, location), 0), engine.get((sku, location), 0)
        if erp_figure != engine_figure:
            drift.append(Drift(sku, location, erp_figure, engine_figure,
                               erp_figure - engine_figure))
    return drift


async def reconcile(client: redis.Redis, erp: ErpAdapter, partitions: int,
                    config: ErpSyncConfig, wait_s: float = 30.0,
                    poll_s: float = 0.2) -> Comparison:
    """Pause the sync job between plans, compare, and let it go on.

    Waits up to `wait_s` for the plan in flight to settle; a comparison taken while a plan
    was in flight, or while the position moved, is marked inconsistent.
    """
    stores = [JournalStore(client, p, config.key_prefix) for p in range(partitions)]
    state = SyncState(client, config.key_prefix)
    pause_ms = int((wait_s + PAUSE_MARGIN_S) * 1000)
    await asyncio.to_thread(state.pause, pause_ms)
    try:
        deadline_s = time.monotonic() + wait_s
        before = await asyncio.to_thread(sync_position, client, stores, state)
        while before[1][1] and time.monotonic() < deadline_s:
            await asyncio.sleep(poll_s)
            before = await asyncio.to_thread(sync_position, client, stores, state)
        engine = await asyncio.to_thread(engine_on_hand, stores, before[0], config.erp_sources)
        erp_figures = await erp_on_hand(erp)
        after = await asyncio.to_thread(sync_position, client, stores, state)
    finally:
        await asyncio.to_thread(state.unpause)
    return Comparison(compare(erp_figures, engine), len(erp_figures.keys() | engine.keys()),
                      before == after and not before[1][1], before)


def repair_event_id(drift: Drift, position: tuple) -> str:
    """The same drift seen at the same sync position gets the same id: repairing it twice
    applies it once."""
    digest = hashlib.sha256(json.dumps([list(drift), repr(position)]).encode()).hexdigest()
    return f"reconcile-{digest[:24]}"


def repair(client: redis.Redis, comparison: Comparison, erp_source: str, owner: str,
           exceptions_stream: str, events_stream: str = EVENTS_STREAM) -> list[str]:
    """Post one ADJUSTMENT per drift onto the events stream and record each exception;
    returns the event ids. Refused on an inconsistent comparison."""
    if not comparison.consistent:
        raise ValueError("the sync job delivered changes while the comparison ran; "
                         "nothing repaired: run reconcile again")
    now_ms = int(time.time() * 1000)
    event_ids = []
    with client.pipeline(transaction=True) as pipe:
        for drift in comparison.drift:
            event_id = repair_event_id(drift, comparison.sync_position)
            movement = {"eventId": event_id, "source": erp_source,
                        "type": "MOVEMENT_TYPE_ADJUSTMENT", "sku": drift.sku,
                        "location": drift.location, "quantity": str(drift.difference),
                        "occurredAtUnixMs": str(now_ms), "reason": REASON}
            pipe.xadd(events_stream, {"json": json.dumps(movement)})
            pipe.xadd(exceptions_stream, {
                "kind": "erp_drift", "sku": drift.sku, "location": drift.location,
                "erp_on_hand": drift.erp_on_hand, "engine_on_hand": drift.engine_on_hand,
                "difference": drift.difference, "action": "adjusted to the ERP's figure",
                "event_id": event_id, "owner": owner, "at_unix_ms": now_ms})
            event_ids.append(event_id)
        pipe.execute()
    return event_ids
