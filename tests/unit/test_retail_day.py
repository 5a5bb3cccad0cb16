"""Retail day: the truth's oversell and undersell accounting, the point-to-point baseline's
model, and a short seeded day through the in-process engine and the baseline."""

from __future__ import annotations

import dataclasses

from engine.model import MovementType as MT
from loadtest.retail_baseline import PointToPoint
from loadtest.retail_day import RetailDay
from loadtest.retail_engine import InProcessEngine
from loadtest.retail_system import Move
from loadtest.retail_truth import Truth
from loadtest.retail_world import MARKET_A, WEB, Cart, RetailConfig


def test_accept_beyond_the_free_units_counts_a_planted_oversell():
    """3 units on the shelf: orders of 2 and 2 oversell exactly 1 unit, on the second."""
    truth = Truth()
    truth.receive("A", "dc-east", 3)
    assert truth.accept(WEB, "A", 2) == 0
    assert truth.accept(MARKET_A, "A", 2) == 1
    assert truth.tallies[MARKET_A].oversold_units == 1
    assert truth.tallies[MARKET_A].oversold_orders == 1
    assert truth.tallies[WEB].oversold_units == 0
    assert truth.free_units("A") == -1


def test_store_stock_is_not_free_for_online_orders():
    """Units at a store are sold at its till only: an online order against them oversells."""
    truth = Truth()
    truth.receive("A", "store-001", 5)
    assert truth.accept(WEB, "A", 1) == 1


def test_units_in_quality_control_are_free_for_nobody_until_restocked():
    """A return awaiting inspection is on hand but not sellable; restocked, it is."""
    truth = Truth()
    truth.return_received("A", "dc-west", 2)
    assert truth.on_hand["A", "dc-west"] == 2
    assert truth.free_units("A") == 0
    assert truth.refuse(WEB, "A", 1) == 0  # refusing it undersold nothing
    truth.restock("A", "dc-west", 2)
    assert truth.refuse(WEB, "A", 3) == 2  # now 2 of the 3 could have been sold
    assert truth.tallies[WEB].undersold_units == 2


def test_a_cancelled_order_is_no_longer_promised_and_shipping_frees_nothing():
    """An order refused behind the channel gives its units back; a shipped one leaves the
    shelf and its promise together."""
    truth = Truth()
    truth.receive("A", "dc-east", 2)
    oversold = truth.accept(MARKET_A, "A", 3)
    truth.cancel(MARKET_A, "A", 3, oversold)
    assert truth.tallies[MARKET_A].oversold_cancelled_units == 1
    assert truth.free_units("A") == 2
    truth.accept(WEB, "A", 2)
    truth.ship("A", "dc-east", 2)
    assert truth.free_units("A") == 0
    assert truth.on_hand["A", "dc-east"] == 0


async def test_point_to_point_channels_miss_each_others_sales_until_the_nightly_import():
    """The storefront and a marketplace both sell the same last 2 units from their caches;
    the ERP hears of the orders only at 02:00, 20 simulated hours after a 06:00 start."""
    config = RetailConfig(market_feed_lag_min=(0.0, 0.0))
    baseline = PointToPoint(config)
    await baseline.start({("A", "dc-east"): 2, ("A", "dc-west"): 0}, 0.0)
    cart = Cart("cart-1", "A", 2, 60.0, abandon=False, release=False)
    assert await baseline.open_cart(cart, 0.0)
    assert await baseline.checkout(cart, 60.0) == ""
    assert baseline.market_take(MARKET_A, "A", 2)  # its feed still says 2
    await baseline.market_forward(MARKET_A, "m-1", "A", 2, 60.0)
    assert baseline.erp_on_hand["A", "dc-east"] == 2
    await baseline.tick(19 * 3_600.0)
    assert baseline.erp_committed["A"] == 0
    await baseline.tick(20 * 3_600.0)
    assert baseline.erp_committed["A"] == 4
    assert baseline.erp_calls["nightly_import"] == 1
    assert (await baseline.shown(WEB)).get("A", 0) == 0


async def test_point_to_point_erp_subtracts_a_late_till_sale_already_in_a_count():
    """A count overwrites the ERP's figure; a sale made before it but posted after it is
    taken off again, which the engine's as-of counts do not do."""
    baseline = PointToPoint(RetailConfig())
    await baseline.start({("A", "store-001"): 5}, 0.0)
    await baseline.post([Move(MT.CYCLE_COUNT, "erp", "A", "store-001", 4, 600.0, "c-1")], 600.0)
    await baseline.post([Move(MT.SALE, "pos", "A", "store-001", 1, 300.0, "p-1")], 900.0)
    assert baseline.erp_on_hand["A", "store-001"] == 3  # the shelf holds 4
    assert baseline.erp_calls["pos_posts"] == 1
    assert baseline.lags.lags_s == [600.0]


async def test_a_short_day_oversells_through_the_baseline_and_never_through_the_engine():
    """The same seeded day: the engine oversells nothing (ring-fenced marketplaces keep what
    they were shown), so honours no order without a unit on the shelf; the baseline
    oversells."""
    config = dataclasses.replace(RetailConfig(), hours_simulated=24.0, stores=8, skus=8,
                                 counts_per_hour=10, sample_every_s=3_600.0, partitions=2)
    engine = await RetailDay(config, InProcessEngine(config)).run()
    baseline = await RetailDay(config, PointToPoint(config)).run()
    assert engine["oversold_units"] == 0
    assert engine["oversold_honoured_units"] == 0
    assert engine["channels"][WEB]["oversold_units"] == 0
    assert engine["rejected_movements"] == []
    assert baseline["oversold_units"] > 0
    assert engine["erp_calls"]["adjustment_posts"] > 0
    assert engine["sync_lag"]["pending_at_end"] == 0
    assert baseline["erp_calls"]["nightly_import"] > 0
    assert len(engine["divergence"]) == len(baseline["divergence"]) == 25
