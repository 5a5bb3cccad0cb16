"""The independent oversell checker finds a planted oversell and nothing where none happened."""

from __future__ import annotations

from loadtest.oversell import (
    Expected,
    HoldRecord,
    expected_readback,
    live_units_at,
    oversold_by_sku,
    peak_live_units,
    readback_oversold,
    readback_problems,
)


def hold(sku="A", units=1, sent=0.0, acked=0.1, ttl=10.0, **more) -> HoldRecord:
    return HoldRecord(sku, units, sent, acked, ttl, **more)


def test_oversold_by_sku_finds_a_planted_oversell():
    """Three units live at once on a stock of two: one unit oversold, on that SKU only."""
    holds = [hold(), hold(acked=0.2), hold(acked=0.3, committed=True), hold("B")]
    assert oversold_by_sku({"A": 2, "B": 5}, holds) == {"A": 1}


def test_oversold_by_sku_is_empty_when_grants_follow_one_another():
    """A unit released, then granted again: never more live than the stock."""
    holds = [hold(released_s=1.0, release_acked=True), hold(sent=1.0, acked=1.1)]
    assert oversold_by_sku({"A": 1}, holds) == {}
    assert peak_live_units(holds) == {"A": 1}


def test_expired_holds_stop_counting_at_their_earliest_expiry():
    """A hold counts until first-sent + TTL: a regrant after that is no oversell."""
    holds = [hold(ttl=2.0), hold(sent=2.0, acked=2.5)]
    assert oversold_by_sku({"A": 1}, holds) == {}


def test_committed_units_count_for_good():
    """A committed unit never lapses: a later grant past the stock is an oversell."""
    holds = [hold(ttl=1.0, committed=True), hold(sent=50.0, acked=50.1)]
    assert oversold_by_sku({"A": 1}, holds) == {"A": 1}


def test_a_hold_acknowledged_after_its_expiry_proves_nothing():
    """An answer that arrives after the TTL ran out adds no interval."""
    assert peak_live_units([hold(ttl=1.0, acked=2.0)]) == {}


def test_readback_oversold_compares_reserved_and_committed_with_the_stock():
    """What a target reports beyond its stock is oversold, per SKU."""
    assert readback_oversold({"A": 3, "B": 3}, {"A": (2, 2), "B": (1, 2)}) == {"A": 1}


def test_live_units_at_counts_what_the_harness_knows_was_live():
    """The harness's side of divergence, limited to the sampled SKUs."""
    holds = [hold(ttl=2.0), hold("B", acked=0.5, committed=True)]
    assert live_units_at(holds, [0.05, 1.0, 3.0]) == [0, 2, 1]
    assert live_units_at(holds, [1.0], frozenset({"A"})) == [1]


def test_expected_readback_gives_ranges_for_holds_near_expiry_and_unanswered_commits():
    """Sure-live holds set the floor; holds near expiry and unanswered commits widen it."""
    holds = [hold(ttl=100.0), hold(ttl=1.0), hold(committed=True),
             hold(commit_unknown=True), hold(released_s=0.5, release_acked=True)]
    assert expected_readback(holds, 5.0, 5.1) == {"A": Expected(1, 2, 1, 2)}
    assert expected_readback(holds, 5.0, 5.1, sweep_lag_s=1.0)["A"].reserved_high == 2


def test_readback_problems_name_lost_and_doubled_units():
    """Below the floor is lost, above the ceiling doubled; inside the ranges is fine."""
    expected = {"A": Expected(1, 2, 3, 3), "B": Expected(0, 0, 1, 1)}
    assert readback_problems(expected, {"A": (2, 3), "B": (0, 1)}) == []
    problems = readback_problems(expected, {"A": (0, 4), "B": (1, 1), "C": (0, 1)})
    assert [problem.split(":")[0] for problem in problems] == ["A", "A", "B", "C"]
    assert "lost" in problems[0] and "doubled" in problems[1]
