"""Channel rules in a partition: figures, quotas, reserve-anywhere, journaled rules, watch reads."""

from __future__ import annotations

import dataclasses

import pytest

from engine import journal, snapshot
from engine.channels import DEFAULT, Buffer, Channel, ChannelRules
from engine.config import PartitionConfig
from engine.model import (
    GetAvailability,
    ItemRef,
    LineCode,
    Outcome,
    Release,
    ReservationStatus,
    SetChannelRules,
    WatchChanges,
    WatchSnapshot,
)
from engine.model import MovementType as MT
from engine.partition_host import PartitionHost
from engine.partition_state import PartitionState
from engine.reserve_batch import ReserveRun
from tests.unit.partition_helpers import NOW, apply_one, apply_refused, move, reserve

SKU = "sku-1"
RULES = ChannelRules((
    Channel(DEFAULT),
    Channel("web", locations=("dc-*", "store-*"), priority=("store-1", "dc-*"),
            buffer=Buffer(units=2)),
    Channel("market", locations=("dc-*",), share_percent=20.0),
    Channel("outlet", locations=("dc-*",), publish_min=5),
))


def stocked(**on_hand: int) -> PartitionState:
    """A partition under RULES with SKU at each location given (dc_1=... for dc-1)."""
    state = PartitionState(PartitionConfig(channels=RULES))
    apply_one(state, SetChannelRules(RULES.to_json()))
    for location, units in on_hand.items():
        apply_one(state, move(f"seed-{location}", MT.RECEIPT, units, SKU,
                              location.replace("_", "-")))
    return state


def figure(state: PartitionState, channel: str, location: str) -> int:
    answer = apply_one(state, GetAvailability((ItemRef(SKU, location),), channel))
    return answer.items[0].available_to_sell


def test_get_availability_applies_each_channels_rules():
    """Buffers, quotas, location groups and publish thresholds each shape a channel's figure."""
    state = stocked(dc_1=100, store_1=4)
    assert figure(state, "", "dc-1") == 100
    assert figure(state, "web", "dc-1") == 98
    assert figure(state, "market", "dc-1") == 20
    assert figure(state, "market", "store-1") == 0  # not in its group
    assert figure(state, "outlet", "dc-1") == 100
    apply_one(state, move("sold", MT.SALE, 96, SKU, "dc-1"))
    assert figure(state, "outlet", "dc-1") == 0  # 4 left is below its threshold of 5
    assert figure(state, "", "dc-1") == 4


def test_reserve_in_a_quota_channel_stops_at_its_share_and_release_gives_it_back():
    """The marketplace gets at most 20% of the stock; a release frees its quota again."""
    state = stocked(dc_1=100)
    results = [apply_one(state, reserve(f"m{n}", (SKU, "dc-1", 5), channel="market"))
               for n in range(6)]
    held = [r.status is ReservationStatus.HELD for r in results]
    # 20% of 100 is 20: four holds of 5; the quota counts what the channel already holds.
    assert held == [True] * 4 + [False] * 2
    assert figure(state, "market", "dc-1") == 0
    assert figure(state, "", "dc-1") == 80  # others still sell the rest
    apply_one(state, Release(results[0].reservation_id, "rel-0"))
    assert figure(state, "market", "dc-1") == 5


def test_reserve_refused_by_a_buffer_changes_nothing():
    """A line the channel's buffer leaves too little for is rejected; no stock moves."""
    state = stocked(dc_1=3)
    result = apply_refused(state, reserve("w1", (SKU, "dc-1", 2), channel="web"))
    assert result.status is ReservationStatus.REJECTED
    assert result.lines[0].code is LineCode.INSUFFICIENT_AVAILABLE


def test_reserve_anywhere_picks_by_priority_and_fails_over():
    """An empty location is sourced from the first location of the priority with enough."""
    state = stocked(dc_1=50, dc_2=50, store_1=4)
    first = apply_one(state, reserve("a1", (SKU, "", 2), channel="web"))
    assert first.lines[0].location == "store-1"  # store-1 first: 4 less its buffer of 2
    second = apply_one(state, reserve("a2", (SKU, "", 2), channel="web"))
    assert second.lines[0].location == "dc-1"  # store-1 has 0 left for web: next in order
    assert state.quantities_of(SKU, "store-1")["reserved"] == 2
    assert state.quantities_of(SKU, "dc-1")["reserved"] == 2


def test_reserve_anywhere_never_offers_one_rows_units_to_two_lines():
    """A cart naming a location and sourcing the same SKU anywhere cannot double-count it."""
    state = stocked(dc_1=5)
    result = apply_one(state, reserve("c1", (SKU, "dc-1", 3), ("sku-1", "", 3), channel="market",
                                      allow_partial=True))
    assert sum(line.reserved for line in result.lines) <= 1  # 20% of 5 is 1
    assert state.quantities_of(SKU, "dc-1")["reserved"] <= 1


def test_unknown_channel_is_refused_and_changes_nothing():
    """A channel the rules do not name is refused, naming the field."""
    state = stocked(dc_1=5)
    result = apply_refused(state, reserve("u1", (SKU, "dc-1", 1), channel="nowhere"))
    assert result.outcome is Outcome.INVALID and result.message.startswith("channel:")


def test_channel_rules_are_journaled_so_replay_grants_what_was_granted():
    """Replaying a journal under another config rebuilds the same holds: rules are state."""
    entries = []
    host = PartitionHost(0, PartitionConfig(channels=RULES), clock_ms=lambda: NOW,
                         on_applied=lambda c, now, first, last: entries.append(
                             journal.encode(c, now, first, last)))
    host.adopt_channel_rules()
    host.apply([move("seed", MT.RECEIPT, 100, SKU, "dc-1")])
    host.apply([reserve(f"m{n}", (SKU, "dc-1", 15), channel="market") for n in range(2)])
    assert host.state.quantities_of(SKU, "dc-1")["reserved"] == 15
    replayed = PartitionState(PartitionConfig())  # restarted with no channels file
    journal.replay(replayed, entries)
    assert replayed.quantities_of(SKU, "dc-1") == host.state.quantities_of(SKU, "dc-1")
    assert replayed.channel_book.rules == RULES


def test_snapshot_keeps_rules_and_recounts_quota_holds():
    """A snapshot restores the rules in force, and each quota channel's holds."""
    state = stocked(dc_1=100)
    apply_one(state, reserve("m1", (SKU, "dc-1", 12), channel="market"))
    restored = snapshot.load(snapshot.dump(state), PartitionConfig())
    assert restored.channel_book.rules == RULES
    assert figure(restored, "market", "dc-1") == figure(state, "market", "dc-1") == 8


def test_plain_channels_keep_the_numpy_path():
    """Default-channel reserves still run vectorized; a channel with rules goes one by one."""
    state = stocked(dc_1=100)
    state.config = dataclasses.replace(state.config, vectorized_run_min=1)
    plain = state.apply([reserve(f"d{n}", (SKU, "dc-1", 1)) for n in range(4)], NOW)
    assert [type(segment) for segment in plain.segments] == [ReserveRun]
    ruled = state.apply([reserve(f"w{n}", (SKU, "dc-1", 1), channel="web") for n in range(4)],
                        NOW)
    assert [type(segment) for segment in ruled.segments] == [list]
    assert state.quantities_of(SKU, "dc-1")["reserved"] == 8


def test_watch_changes_report_changed_rows_and_network_figures():
    """After a cursor, a change reports its row's figure per channel and the SKU's network."""
    state = stocked(dc_1=10, dc_2=5, store_1=3)
    first = apply_one(state, WatchChanges(("web", "market")))
    assert first.figures == () and first.ring
    apply_one(state, move("sold", MT.SALE, 1, SKU, "dc-2"))
    answer = apply_one(state, WatchChanges(("web", "market"), first.ring, first.total))
    assert not answer.refresh
    assert [(f.location, f.figures) for f in answer.figures] == [
        ("dc-2", (2, 0)),       # web: 4 less 2; market: 20% of 4 floors to 0
        ("", (8 + 2 + 1, 2 + 0))]  # network: every location of the SKU in the group


def test_watch_changes_answer_refresh_when_the_cursor_is_stale():
    """A cursor of another ring (a restarted partition, a bulk load) asks for a re-read."""
    state = stocked(dc_1=10)
    answer = apply_one(state, WatchChanges(("web",), "not-this-ring", 0))
    assert answer.refresh and answer.figures == ()


@pytest.mark.parametrize("limit", [1, 1000])
def test_watch_snapshot_pages_through_every_sku(limit):
    """Paging a snapshot visits every SKU once, whatever the page size."""
    state = stocked(dc_1=1)
    for n in range(3):
        apply_one(state, move(f"other-{n}", MT.RECEIPT, 2, f"sku-{n + 2}", "dc-1"))
    seen, after = [], 0
    while after >= 0:
        page = apply_one(state, WatchSnapshot(("",), (), after, limit))
        seen += [figure.sku for figure in page.figures if figure.location == ""]
        after = page.next_after
    assert sorted(seen) == ["sku-1", "sku-2", "sku-3", "sku-4"]
