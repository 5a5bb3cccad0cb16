"""Windows sum journal changes per SKU-location for the ERP; plans survive a restart intact."""

from engine.erp_client import AdjustmentLine
from engine.erp_plan import Plan, Window, plan_window
from engine.journal import LedgerEntry
from engine.model import LedgerChange

T0 = 1_700_000_000_000


def entry(first_seq, last_seq, *changes, now_ms=T0):
    return LedgerEntry(first_seq, last_seq, now_ms,
                       tuple(LedgerChange(*change) for change in changes))


def test_window_sums_changes_per_item_over_entries_and_partitions():
    """Deltas of one SKU-location add up across entries; each partition's reach is kept."""
    window = Window(("erp",), 100)
    window.add(0, entry(1, 2, ("a", "dc", -1, 0, "pos"), ("b", "dc", 5, 0, "wms")))
    window.add(0, entry(3, 3, ("a", "dc", -2, 1, "pos")))
    window.add(1, entry(8, 9, ("c", "dc", 0, 4, "")))
    assert window.lines() == [AdjustmentLine("a", "dc", -3, 1), AdjustmentLine("b", "dc", 5, 0),
                              AdjustmentLine("c", "dc", 0, 4)]
    assert window.reached == {0: 3, 1: 9}


def test_window_leaves_out_the_erps_own_changes():
    """A movement the ERP posted is never sent back to it, but its entry is still passed."""
    window = Window(("erp", "erp-eu"), 100)
    window.add(0, entry(1, 1, ("a", "dc", 10, 0, "erp"), ("a", "dc", 3, 0, "erp-eu")))
    assert window.lines() == [] and window.change_times_ms == [] and window.reached == {0: 1}


def test_window_drops_items_that_net_to_zero():
    """A sale and a return of the same unit within a window cost the ERP nothing."""
    window = Window(("erp",), 100)
    window.add(0, entry(1, 1, ("a", "dc", -1, 0, "pos")))
    window.add(0, entry(2, 2, ("a", "dc", 1, 0, "returns")))
    assert window.lines() == []


def test_window_is_full_at_its_line_bound():
    """The window reports full once it holds its most SKU-locations."""
    window = Window(("erp",), 2)
    window.add(0, entry(1, 1, ("a", "dc", 1, 0, "pos")))
    assert not window.full
    window.add(0, entry(2, 2, ("b", "dc", 1, 0, "pos")))
    assert window.full


def test_plan_cuts_batches_and_round_trips_through_bytes():
    """Lines are cut into batches of the bound; a decoded plan is the same plan, same keys."""
    window = Window(("erp",), 100)
    window.add(3, entry(1, 5, *[(f"sku-{n}", "dc", n + 1, 0, "pos") for n in range(5)],
                     now_ms=T0 + 7))
    plan = plan_window(window, "abc", 12, 2)
    assert [len(batch) for batch in plan.batches] == [2, 2, 1]
    assert plan.reached == {3: 5} and plan.oldest_change_ms == T0 + 7
    assert plan.key(2) == "abc-12-2"
    assert Plan.decode(plan.encode()) == plan
