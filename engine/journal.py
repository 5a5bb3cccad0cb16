"""Journal entries of a partition: one per applied batch, and replay of them onto a snapshot."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgpack

from engine import records
from engine.model import READS, Command, LedgerChange
from engine.partition_state import PartitionState

# 2 added the batch's ledger changes; entries of format 1 read as having none.
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


class JournalBatch(NamedTuple):
    """A batch as applied: its commands, its time, and the sequence numbers it took."""

    first_seq: int
    last_seq: int
    now_ms: int
    commands: tuple[Command, ...]
    ledger_changes: tuple[LedgerChange, ...] = ()


class LedgerEntry(NamedTuple):
    """What a downstream ledger needs of an entry: its seqs, its time and its changes."""

    first_seq: int
    last_seq: int
    now_ms: int
    ledger_changes: tuple[LedgerChange, ...]


class JournalGap(Exception):
    """An entry does not follow the state's sequence number: entries are missing."""


def encode(batch: Sequence[Command], now_ms: int, first_seq: int, last_seq: int,
           ledger_changes: Sequence[LedgerChange] = ()) -> bytes:
    """One entry for a batch applied at `now_ms` that took sequence numbers first..last.

    Reads change nothing and take no sequence number, so they are left out. The batch's
    ledger changes ride along, so the ERP sync job drains them without a replica.
    """
    commands = [records.encode(command) for command in batch if type(command) not in READS]
    return msgpack.packb([FORMAT_VERSION, first_seq, last_seq, now_ms, commands,
                          [list(change) for change in ledger_changes]])


def decode(entry: bytes) -> JournalBatch:
    first_seq, last_seq, now_ms, commands, changes = _unpack(entry)
    return JournalBatch(first_seq, last_seq, now_ms,
                        tuple(records.decode(command) for command in commands), changes)


def decode_ledger(entry: bytes) -> LedgerEntry:
    """An entry's seqs, time and ledger changes, without building its commands."""
    first_seq, last_seq, now_ms, _, changes = _unpack(entry)
    return LedgerEntry(first_seq, last_seq, now_ms, changes)


def _unpack(entry: bytes) -> tuple:
    version, first_seq, last_seq, now_ms, commands, *rest = msgpack.unpackb(entry, raw=False)
    if version not in _READABLE_VERSIONS:
        raise ValueError(f"journal entry format {version} is not one of {_READABLE_VERSIONS}")
    changes = tuple(LedgerChange(*change) for change in rest[0]) if rest else ()
    return first_seq, last_seq, now_ms, commands, changes


def replay(state: PartitionState, entries: Iterable[bytes]) -> int:
    """Apply the entries the state has not seen yet, in order; returns how many were applied.

    Entries at or below the state's sequence number are already in it (a snapshot taken
    after them) and are skipped. Anything but the next number is a gap, and replay stops
    there rather than build a state that never existed. Consecutive entries of the same
    instant are applied as one batch: the same commands in the same order at the same
    time give the same state, and long batches take the core's vectorized path.
    """
    applied, reached = 0, state.seq
    pending: list[Command] = []
    pending_now_ms = 0
    for entry in entries:
        batch = decode(entry)
        if batch.last_seq <= reached:
            continue
        if batch.first_seq != reached + 1 or (pending and batch.now_ms != pending_now_ms):
            _apply_pending(state, pending, pending_now_ms, reached)
            pending = []
            if batch.first_seq != reached + 1:
                raise JournalGap(f"entry starts at seq {batch.first_seq}, state is at {reached}")
        pending.extend(batch.commands)
        pending_now_ms, reached = batch.now_ms, batch.last_seq
        applied += 1
    _apply_pending(state, pending, pending_now_ms, reached)
    return applied


def _apply_pending(state: PartitionState, commands: list[Command], now_ms: int,
                   last_seq: int) -> None:
    if not commands:
        return
    state.apply(commands, now_ms)
    if state.seq != last_seq:
        raise JournalGap(f"entries end at seq {last_seq}, replay reached {state.seq}")
