"""FenceShown and SettleFences inside a partition: a ring-fenced channel's fences follow its feeds.

A command is checked whole before any row changes, so a refused one changes nothing. Each
row whose fence moves is noted in the item ledger: every other channel's figure there
moved with it, and watchers (the other channels' publishers) must hear of it.

A settle of publish P lowers each fence to what the channel may still act on: its newest
figure (`shown`) and the figures of publishes after P, which it may not have applied yet.
With none after P that is `min(fence, shown)`. A channel's hold is usually longer than its
cadence, so the next publish has nearly always been fenced when a settle falls due; a
settle skipped outright whenever that happens would never lower a busy channel's fences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.channels import DEFAULT
from engine.model import FenceResult, FenceShown, Outcome, SettleFences

if TYPE_CHECKING:
    from engine.partition_state import PartitionState

# Publishes kept unsettled per channel; past it the oldest two merge (their larger units).
UNSETTLED_MAX = 64


def fence_shown(state: PartitionState, command: FenceShown, now_ms: int) -> FenceResult:
    """shown = units and fence = max(fence, units) at each named row."""
    book = state.channel_book
    refusal = _channel_refusal(book, command.channel) or _seq_refusal(command.publish_seq)
    rows: list[int] = []
    if not refusal:
        refusal, rows = _rows_of(state, command.items)
    if refusal:
        return FenceResult(Outcome.INVALID, 0, False, refusal)
    slot = book.fence_slot(command.channel)
    fence, shown = book.fence[:, slot], book.shown[:, slot]
    unsettled = book.unsettled[command.channel or DEFAULT]
    if unsettled and unsettled[-1][0] == command.publish_seq:  # one publish in parts
        this_publish = unsettled[-1][1]
    else:
        this_publish = {}
        unsettled.append((command.publish_seq, this_publish))
        if len(unsettled) > UNSETTLED_MAX:  # the oldest two as one: covers both, longer
            (_, oldest), (seq, older) = unsettled.popleft(), unsettled.popleft()
            unsettled.appendleft((seq, {row: max(oldest.get(row, 0), older.get(row, 0))
                                        for row in oldest.keys() | older.keys()}))
    moved = 0
    for row, item in zip(rows, command.items, strict=True):
        this_publish[row] = item.units
        before = int(fence[row])
        shown[row] = item.units
        if item.units > before:
            fence[row] = item.units
            moved += 1
            state.item_ledger.record(row, state.seq, now_ms, "FENCE", item.units - before,
                                     f"publish-{command.publish_seq}", command.channel)
    return FenceResult(Outcome.OK, moved)


def settle_fences(state: PartitionState, command: SettleFences, now_ms: int) -> FenceResult:
    """fence = min(fence, max(shown, units of each later publish)) at every row; `skipped`
    says later publishes keep some of it up."""
    book = state.channel_book
    refusal = _channel_refusal(book, command.channel) or _seq_refusal(command.publish_seq)
    if refusal:
        return FenceResult(Outcome.INVALID, 0, False, refusal)
    unsettled = book.unsettled[command.channel or DEFAULT]
    while unsettled and unsettled[0][0] <= command.publish_seq:
        unsettled.popleft()
    slot, size = book.fence_slot(command.channel), state.items.size
    fence, shown = book.fence[:size, slot], book.shown[:size, slot]
    covered = shown.copy()
    for _, later in unsettled:
        for row, units in later.items():
            covered[row] = max(covered[row], units)
    settled = np.minimum(fence, covered)
    changed = np.flatnonzero(settled != fence)
    for row, released in zip(changed.tolist(), (settled - fence)[changed].tolist(),
                             strict=True):
        state.item_ledger.record(row, state.seq, now_ms, "SETTLE", released,
                                 f"publish-{command.publish_seq}", command.channel)
    fence[:] = settled
    return FenceResult(Outcome.OK, len(changed), bool(unsettled))


def _channel_refusal(book, name: str) -> str:
    if not book.rules.knows(name):
        return f"channel: {name!r} is not a configured channel"
    if book.fence_slot(name) is None:
        return f"channel: {name or 'default'!r} is not ring-fenced (ring_fence = true)"
    return ""


def _seq_refusal(publish_seq: object) -> str:
    if type(publish_seq) is not int or publish_seq < 0:
        return "publish_seq: must be a whole number, at least 0"
    return ""


def _rows_of(state: PartitionState, items) -> tuple[str, list[int]]:
    """The row of every item, or the first item's fault (naming its field) and no rows."""
    if not items:
        return "items: must not be empty", []
    rows: list[int] = []
    seen: dict[int, int] = {}
    for index, item in enumerate(items):
        for field in ("sku", "location"):
            value = getattr(item, field)
            if not isinstance(value, str) or not value:
                return f"items[{index}].{field}: must be a non-empty string", []
        if type(item.units) is not int or item.units < 0:
            return f"items[{index}].units: must be a whole number, at least 0", []
        row = state.items.find(item.sku, item.location)
        if row is None:
            return (f"items[{index}]: {item.sku!r} at {item.location!r} is not a known "
                    "SKU-location"), []
        first = seen.setdefault(row, index)
        if first != index:
            return f"items[{index}]: repeats the sku and location of items[{first}]", []
        rows.append(row)
    return "", rows
