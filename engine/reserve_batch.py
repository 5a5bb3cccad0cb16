"""Runs of single-line Reserves applied with numpy, with the same results as one at a time."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

import numpy as np

from engine.model import (
    LineCode,
    LineResult,
    Outcome,
    ReservationStatus,
    Reserve,
    ReserveResult,
)
from engine.reservations import Reservation

if TYPE_CHECKING:
    from engine.partition_state import PartitionState


class ReserveRun(Sequence):
    """The results of one run, kept as int64 columns; a ReserveResult is built when read.

    Most results are only encoded once for the wire, so building thousands of tuples
    per batch inside the partition would be the largest cost of the hot path; and a
    remembered run costs 32 bytes a command instead of four Python ints.
    """

    __slots__ = ("commands", "rows", "granted", "available_after", "expires_at_ms")

    def __init__(self, commands, rows, granted, available_after, expires_at_ms):
        self.commands = commands
        self.rows = rows
        self.granted = granted
        self.available_after = available_after
        self.expires_at_ms = expires_at_ms

    def __len__(self) -> int:
        return len(self.commands)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        command = self.commands[index]
        line = command.lines[0]
        units = int(self.granted[index])
        if units == line.quantity:
            code, status = LineCode.OK, ReservationStatus.HELD
        elif self.rows[index] < 0:
            code, status = LineCode.UNKNOWN_ITEM, ReservationStatus.REJECTED
        else:
            code = LineCode.INSUFFICIENT_AVAILABLE
            status = ReservationStatus.PARTIALLY_HELD if units else ReservationStatus.REJECTED
        lines = (LineResult(line.sku, line.location, line.quantity, units, code,
                            int(self.available_after[index])),)
        if not units:
            return ReserveResult(Outcome.OK, "", status, lines, 0)
        return ReserveResult(Outcome.OK, command.reservation_id, status, lines,
                             int(self.expires_at_ms[index]))

    def reservation(self, index: int) -> Reservation:
        """The hold granted at `index`, as a Reservation object."""
        command = self.commands[index]
        return Reservation(command.reservation_id, (int(self.rows[index]),),
                           (int(self.granted[index]),), int(self.expires_at_ms[index]),
                           command.order_ref, command.channel)


_KEY = attrgetter("idempotency_key")
_ID = attrgetter("reservation_id")
_LINES = attrgetter("lines")
_CHANNEL = attrgetter("channel")
_LOCATION = attrgetter("location")
_FIRST = itemgetter(0)


def take_run(state: PartitionState, batch, start: int) -> tuple[list, list[str], list[str]]:
    """The Reserves from `start` that can be applied together, their keys and their ids.

    A run holds single-line Reserves with fresh idempotency keys and fresh reservation
    ids; anything else (a retry, a cart, another command) ends it and goes the slow way.
    The set-based check covers a whole batch of fresh Reserves (the common case) in one
    go; elsewhere a per-command scan keeps the work linear in the batch.
    """
    if start == 0:
        keys_and_ids = _all_eligible(state, batch)
        if keys_and_ids:
            return list(batch), *keys_and_ids  # a copy: results outlive the caller's list
    return _eligible_prefix(state, itertools.islice(batch, start, None))


def _all_eligible(state: PartitionState, commands) -> tuple[list, list] | None:
    if set(map(type, commands)) != {Reserve} or set(map(len, map(_LINES, commands))) != {1}:
        return None
    quantities = list(map(_QUANTITY, map(_FIRST, map(_LINES, commands))))
    if set(map(type, quantities)) != {int} or min(quantities) < 1:
        return None  # malformed: the one-at-a-time path refuses it with a reason
    if not all(map(state.channel_book.is_plain, set(map(_CHANNEL, commands)))) \
            or not all(map(_LOCATION, map(_FIRST, map(_LINES, commands)))):
        return None  # a channel's rules, or a line to source anywhere: one at a time
    keys, ids = list(map(_KEY, commands)), list(map(_ID, commands))
    if (len(set(keys)) == len(keys) and len(set(ids)) == len(ids)
            and state.idempotency.entries.keys().isdisjoint(keys)
            and state.reservations.by_id.keys().isdisjoint(ids)):
        return keys, ids
    return None


def _eligible_prefix(state: PartitionState, commands) -> tuple[list, list[str], list[str]]:
    remembered = state.idempotency.entries
    reservations = state.reservations.by_id
    is_plain = state.channel_book.is_plain  # a set lookup: this loop is the hot path
    keys, ids, run = {}, {}, []  # dicts as ordered sets
    for command in commands:
        if type(command) is not Reserve or len(command.lines) != 1 \
                or type(command.lines[0].quantity) is not int or command.lines[0].quantity < 1 \
                or not command.lines[0].location or not is_plain(command.channel):
            break
        key, reservation_id = command.idempotency_key, command.reservation_id
        if key in remembered or key in keys or reservation_id in reservations \
                or reservation_id in ids:
            break
        keys[key] = ids[reservation_id] = None
        run.append(command)
    return run, list(keys), list(ids)


def apply_run(state: PartitionState, run: list, keys: list[str], ids: list[str],
              now_ms: int) -> ReserveRun:
    """Apply a run from `take_run`: grant, hold, remember the keys; results stay columnar."""
    lines = list(map(_FIRST, map(_LINES, run)))
    rows_array = state.items.rows_of(lines)
    granted = np.zeros(len(run), dtype=np.int64)
    available_after = np.zeros(len(run), dtype=np.int64)
    known = np.flatnonzero(rows_array >= 0)
    if len(known):
        wanted = np.fromiter(map(_QUANTITY, lines), dtype=np.int64, count=len(run))
        partial = np.fromiter(map(_PARTIAL, run), dtype=np.bool_, count=len(run))
        granted[known], available_after[known] = _grant_in_order(
            state.items, rows_array[known], wanted[known], partial[known],
            state.channel_book.plain_available_rows)
    ttl_s = np.fromiter(map(_TTL, run), dtype=np.int64, count=len(run))
    ttl_s[ttl_s == 0] = state.config.hold_ttl_seconds_default
    results = ReserveRun(run, rows_array, granted, available_after, now_ms + 1000 * ttl_s)
    entries = list(zip(run, itertools.repeat(results), range(len(run))))
    state.idempotency.remember_entries(keys, entries, now_ms)
    held = granted > 0
    if held.all():
        state.reservations.add_held_run(ids, entries, results.expires_at_ms.tolist())
    elif held.any():
        mask = held.tolist()
        state.reservations.add_held_run(list(itertools.compress(ids, mask)),
                                        list(itertools.compress(entries, mask)),
                                        results.expires_at_ms[held].tolist())
    return results


_QUANTITY = attrgetter("quantity")
_PARTIAL = attrgetter("allow_partial")
_TTL = attrgetter("ttl_seconds")


def _grant_in_order(items, rows: np.ndarray, wanted: np.ndarray, partial: np.ndarray,
                    available_of) -> tuple[np.ndarray, np.ndarray]:
    """Grant in arrival order and add to `reserved`; returns units granted and ATS left.

    `available_of(items, rows)` is what a plain channel may sell at each row: its
    available-to-sell, less any ring-fenced channel's fence there.

    Within one row the requests that fit are a prefix of a running sum; the rest of a row
    that runs out (usually a few) are decided one at a time.
    """
    order = np.argsort(rows, kind="stable")
    sorted_rows, sorted_wanted = rows[order], wanted[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_rows[1:] != sorted_rows[:-1])))
    if len(starts) == len(rows):
        return _grant_distinct(items, rows, wanted, partial, available_of)
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
    unique_rows = sorted_rows[starts]
    group_ats = available_of(items, unique_rows)[group]
    running = _running_sum_per_group(sorted_wanted, starts, group)
    sorted_granted = np.where(running <= group_ats, sorted_wanted, 0)
    overflowing = np.flatnonzero(running > group_ats)
    if len(overflowing):
        _decide_tail(overflowing, group, sorted_granted, sorted_wanted, partial[order],
                     group_ats, starts)
    items.columns["reserved"][unique_rows] += np.add.reduceat(sorted_granted, starts)
    granted = np.empty_like(sorted_granted)
    granted[order] = sorted_granted
    available_after = np.empty_like(sorted_granted)
    available_after[order] = group_ats - _running_sum_per_group(sorted_granted, starts, group)
    return granted, available_after


def _grant_distinct(items, rows: np.ndarray, wanted: np.ndarray, partial: np.ndarray,
                    available_of) -> tuple[np.ndarray, np.ndarray]:
    """_grant_in_order when no two requests share a row: each stands alone."""
    ats = available_of(items, rows)
    granted = np.where(wanted <= ats, wanted, np.where(partial, np.maximum(ats, 0), 0))
    items.columns["reserved"][rows] += granted
    return granted, ats - granted


def _running_sum_per_group(values: np.ndarray, starts: np.ndarray,
                           group: np.ndarray) -> np.ndarray:
    running = np.cumsum(values)
    before_group = np.concatenate(([0], running[starts[1:] - 1]))
    return running - before_group[group]


def _decide_tail(overflowing, group, granted, wanted, partial, group_ats, starts) -> None:
    """From the first request of a row that does not fit, decide each one sequentially."""
    first_of_group: dict[int, int] = {}
    for position in overflowing.tolist():
        first_of_group.setdefault(int(group[position]), position)
    for row_group, first in first_of_group.items():
        left = int(group_ats[first]) - int(granted[starts[row_group]:first].sum())
        position = first
        while position < len(group) and group[position] == row_group:
            want = int(wanted[position])
            units = want if want <= left else (max(left, 0) if partial[position] else 0)
            granted[position] = units
            left -= units
            position += 1


def record_holds(ledger, held: ReserveRun, ids: list[str], seq_before: int, now_ms: int) -> None:
    """Note each granted hold of a run in the item ledger, at the seq it took."""
    granted = np.flatnonzero(held.granted > 0)
    if not len(granted):
        return
    positions = granted.tolist()
    commands = held.commands
    ledger.record_holds(held.rows[granted], seq_before + 1 + granted, now_ms,
                        held.granted[granted], [ids[i] for i in positions],
                        [commands[i].channel for i in positions],
                        [commands[i].correlation_id for i in positions])
