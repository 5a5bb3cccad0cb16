"""Explaining a figure: its terms add up to available-to-sell, and the changes behind it show."""

from engine.channels import DEFAULT, Channel, ChannelRules
from engine.config import PartitionConfig
from engine.model import Commit, Release
from engine.model import MovementType as MT
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import (
    DEST,
    LOC,
    NOW,
    PATHS,
    SKU,
    move,
    new_state,
    path_config,
    reserve,
)


def ats_of(state, sku=SKU, location=LOC) -> int:
    row = state.items.find(sku, location)
    return int(state.items.available_to_sell(row))


@PATHS
def test_explain_terms_sum_to_available_to_sell(vectorized):
    """on_hand less every deduction is exactly the reported available-to-sell."""
    state = new_state(vectorized, on_hand=50, safety_stock=3)
    state.apply([reserve(f"k{n}", (SKU, LOC, 2)) for n in range(20)], NOW)
    state.apply([move("d1", MT.DAMAGE, 4), move("r1", MT.RETURN_RECEIVED, 5),
                 Commit("res-k0", "c0")], NOW)
    explanation = state.explain(SKU, LOC)
    assert sum(quantity for _, quantity in explanation.terms) == ats_of(state)
    assert [name for name, _ in explanation.terms] == [
        "on_hand", "reserved", "committed", "safety_stock", "damaged", "quality_control"]


@PATHS
def test_explain_lists_the_latest_changes_newest_first(vectorized):
    """Holds (either path), commits, releases and movements appear with keys and sources."""
    state = new_state(vectorized, on_hand=10)
    state.put_channel_rules(ChannelRules((Channel(DEFAULT), Channel("web"))))
    state.apply([reserve(f"k{n}", (SKU, LOC, 1), channel="web", correlation_id=f"c-{n}")
                 for n in range(3)], NOW)
    state.apply([Commit("res-k0", "commit-0"), Release("res-k1", "release-1"),
                 move("sale-1", MT.SALE, 2, correlation_id="till-9")], NOW + 1)
    recent = state.explain(SKU, LOC, recent_max=4).recent
    assert [(line.what, line.key) for line in recent] == [
        ("SALE", "sale-1"), ("RELEASE", "res-k1"), ("COMMIT", "res-k0"), ("RESERVE", "res-k2")]
    assert recent[0].source == "wms" and recent[0].correlation_id == "till-9"
    assert recent[3].source == "web" and recent[3].correlation_id == "c-2"
    assert [line.seq for line in recent] == sorted((line.seq for line in recent), reverse=True)


def test_explain_sold_out_says_when_the_earliest_hold_lapses():
    """With nothing left to sell, the answer names the first instant a hold gives units back."""
    state = new_state(on_hand=3)
    state.apply([reserve("long", (SKU, LOC, 2), ttl_seconds=600)], NOW)
    state.apply([reserve("short", (SKU, LOC, 1), ttl_seconds=60)], NOW + 5)
    assert state.explain(SKU, LOC).earliest_hold_expires_at_ms == NOW + 5 + 60_000
    state.apply([Release("res-short", "release")], NOW + 6)
    assert state.explain(SKU, LOC).earliest_hold_expires_at_ms == 0  # ATS 1: not sold out


def test_explain_transfer_shows_at_both_ends_and_unknown_item_is_none():
    """A transfer out is behind both locations' figures; an unknown SKU-location has none."""
    state = new_state(on_hand=10)
    state.apply([move("t1", MT.TRANSFER_OUT, 4, destination_location=DEST)], NOW)
    assert state.explain(SKU, DEST).recent[0].what == "TRANSFER_OUT (arriving)"
    assert state.explain("nope", LOC) is None


def test_item_ledger_keeps_only_the_newest_changes():
    """The ring holds its capacity; older changes give way to newer ones."""
    state = PartitionState(PartitionConfig(item_ledger_entries=8,
                                           vectorized_run_min=path_config(True)
                                           .vectorized_run_min))
    state.apply([move(f"r{n}", MT.RECEIPT, 1) for n in range(20)], NOW)
    recent = state.explain(SKU, LOC, recent_max=100).recent
    assert [line.key for line in recent] == [f"r{n}" for n in range(19, 11, -1)]


def test_item_ledger_run_of_holds_wraps_around_the_ring():
    """A run of holds longer than the room left wraps to the ring's start, newest kept."""
    import numpy as np

    from engine.item_ledger import ItemLedger

    ledger = ItemLedger(8)
    for n in range(5):
        ledger.record(1, n + 1, 0, "SALE", 1, f"s{n}")
    ledger.record_holds(np.array([1] * 6), np.arange(6, 12), 0, np.ones(6, dtype=np.int64),
                        [f"r{n}" for n in range(6)], ["web"] * 6, [""] * 6)
    assert [line.key for line in ledger.last(1, 10)] == [
        "r5", "r4", "r3", "r2", "r1", "r0", "s4", "s3"]
    ledger.record_holds(np.array([2] * 20), np.arange(20, 40), 0, np.ones(20, dtype=np.int64),
                        [f"big{n}" for n in range(20)], [""] * 20, [""] * 20)
    assert [line.key for line in ledger.last(2, 3)] == ["big19", "big18", "big17"]
    assert ledger.last(1, 10) == []
