"""Each batch reports what it did to on_hand and committed, per item and source, in its entry."""

import msgpack

from engine import journal
from engine.model import Commit, LedgerChange, Release
from engine.model import MovementType as MT
from tests.unit.partition_helpers import DEST, LOC, NOW, SKU, move, new_state, reserve


def changes_of(state, *commands):
    state.apply(list(commands), NOW)
    return sorted(state.ledger_changes())


def test_ledger_changes_sum_a_batch_per_item_and_source():
    """Two sales and a receipt of one source become one net change for the item."""
    state = new_state(on_hand=10)
    changes = changes_of(state, move("e1", MT.SALE, 2), move("e2", MT.SALE, 1),
                         move("e3", MT.RECEIPT, 5),
                         move("e4", MT.ADJUSTMENT, -4)._replace(source="erp"))
    assert changes == [LedgerChange(SKU, LOC, -4, 0, "erp"), LedgerChange(SKU, LOC, 2, 0, "wms")]


def test_ledger_changes_commit_ship_and_cancel_move_committed():
    """A commit adds to committed, a shipment takes it off with on_hand, a cancel releases it."""
    state = new_state(on_hand=10)
    state.apply([reserve("k1", (SKU, LOC, 3)), reserve("k2", (SKU, LOC, 2))], NOW)
    assert changes_of(state, Commit("res-k1", "c1", "order-1"),
                      Commit("res-k2", "c2", "order-2")) == [
        LedgerChange(SKU, LOC, 0, 5, "")]
    assert changes_of(state, move("s1", MT.SHIPMENT, 3, reservation_id="res-k1")) == [
        LedgerChange(SKU, LOC, -3, -3, "wms")]
    assert changes_of(state, Release("res-k2", "r2", "cancelled")) == [
        LedgerChange(SKU, LOC, 0, -2, "")]


def test_ledger_changes_cycle_count_reports_the_difference():
    """A count reports how far it moved on_hand, not the counted figure."""
    state = new_state(on_hand=10)
    assert changes_of(state, move("c1", MT.CYCLE_COUNT, 7, occurred_at_unix_ms=NOW)) == [
        LedgerChange(SKU, LOC, -3, 0, "wms")]


def test_ledger_changes_transfer_out_touches_only_the_source_on_hand():
    """A transfer out lowers the source's on_hand; the destination's incoming is no ledger."""
    state = new_state(on_hand=10)
    assert changes_of(state, move("t1", MT.TRANSFER_OUT, 4, destination_location=DEST)) == [
        LedgerChange(SKU, LOC, -4, 0, "wms")]


def test_ledger_changes_empty_for_holds_refusals_and_duplicates():
    """Holds, refused movements and a replayed event change no ledger quantity."""
    state = new_state(on_hand=10)
    state.apply([move("e1", MT.SALE, 1)], NOW)
    assert changes_of(state, reserve("k1", (SKU, LOC, 3)), move("e1", MT.SALE, 1),
                      move("bad", MT.TRANSFER_OUT, 1, destination_location=LOC)) == []


def test_journal_entry_carries_ledger_changes():
    """An entry decodes to the changes it was written with, with or without its commands."""
    change = LedgerChange(SKU, LOC, -2, 1, "pos")
    entry = journal.encode([move("e1", MT.SALE, 2)], NOW, 5, 5, [change])
    assert journal.decode(entry).ledger_changes == (change,)
    assert journal.decode_ledger(entry) == journal.LedgerEntry(5, 5, NOW, (change,))


def test_journal_entry_of_format_1_reads_without_changes():
    """Entries written before changes were journaled still replay, with no changes."""
    entry = msgpack.packb([1, 3, 3, NOW, []])
    assert journal.decode_ledger(entry) == journal.LedgerEntry(3, 3, NOW, ())
