"""Builders and checks shared by the partition state tests."""

from __future__ import annotations

import pytest

from engine.config import PartitionConfig
from engine.model import (
    Commit,
    Movement,
    Outcome,
    ReservationStatus,
    Reserve,
    ReserveLine,
)
from engine.model import MovementType as MT
from engine.partition_state import PartitionState

NOW = 1_700_000_000_000
SKU, LOC, DEST = "sku-1", "dc-1", "store-2"
SKEW_MS = PartitionConfig().clock_skew_ms_max
PATHS = pytest.mark.parametrize("vectorized", [True, False], ids=["numpy-run", "one-by-one"])


# ---- helpers ------------------------------------------------------------------------------


def new_state(vectorized: bool = True, **quantities: int) -> PartitionState:
    """A partition with one SKU-location (SKU at LOC) holding the given quantities."""
    return new_state_with(path_config(vectorized), **quantities)


def path_config(vectorized: bool, **settings) -> PartitionConfig:
    """Single-line Reserves all on the numpy path, or all one at a time."""
    return PartitionConfig(vectorized_run_min=1 if vectorized else 10**9, **settings)


def new_state_with(config: PartitionConfig, **quantities: int) -> PartitionState:
    state = PartitionState(config)
    state.load_items([SKU], [LOC], [quantities.pop("on_hand", 0)])
    row = state.items.find(SKU, LOC)
    for name, value in quantities.items():
        state.items.columns[name][row] = value  # a fixture, not a command: no history needed
    return state


def reserve(key: str, *lines: tuple, rid: str = "", **fields) -> Reserve:
    """A Reserve of (sku, location, quantity) lines; the reservation id defaults from the key."""
    return Reserve(key, rid or f"res-{key}", tuple(ReserveLine(*line) for line in lines),
                   **fields)


def move(event_id: str, kind: MT, quantity: int, sku: str = SKU, location: str = LOC,
         **fields) -> Movement:
    return Movement(event_id, "wms", kind, sku, location, quantity, **fields)


def apply_one(state: PartitionState, command, now_ms: int = NOW):
    return state.apply([command], now_ms)[0]


def observable(state: PartitionState) -> tuple:
    """Every row's quantities and every reservation's (id, state, rows, quantities)."""
    items = state.items
    rows = {}
    for row in range(items.size):
        key = (items.row_sku[row], items.locations[int(items.row_location[row])])
        rows[key] = state.quantities_of(*key)
    holds = sorted((r.reservation_id, r.state, r.rows, r.quantities)
                   for r in state.reservations.all())
    return rows, holds


def apply_refused(state: PartitionState, command, now_ms: int = NOW):
    """Apply a command the engine must refuse, and check that nothing observable changed."""
    before = observable(state)
    result = apply_one(state, command, now_ms)
    assert observable(state) == before
    return result


def qty(state: PartitionState, name: str, sku: str = SKU, location: str = LOC) -> int:
    return state.quantities_of(sku, location)[name]


def ats(state: PartitionState, sku: str = SKU, location: str = LOC) -> int:
    return state.query([(sku, location)]).items[0].available_to_sell


def held(state: PartitionState, quantity: int, key: str = "hold", **fields) -> str:
    """Hold `quantity` of SKU at LOC and return the reservation id."""
    result = apply_one(state, reserve(key, (SKU, LOC, quantity), **fields))
    assert result.status is ReservationStatus.HELD
    return result.reservation_id


def committed(state: PartitionState, quantity: int, key: str = "hold", **fields) -> str:
    rid = held(state, quantity, key, **fields)
    assert apply_one(state, Commit(rid, f"commit-{key}")).outcome is Outcome.OK
    return rid
