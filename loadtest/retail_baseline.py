"""The point-to-point baseline of a retail day (pure, simulated clock): no engine and no
reservations. The ERP is the only stock record; every channel keeps a cached quantity
refreshed from it on its own cadence and counts down its own sales in between; stores
post till sales to the ERP in batches; online orders and their shipments reach the ERP
in a nightly import.

What it models, on purpose, is how such integrations usually behave: a connector reads
the ERP's on-hand export (every row, page by page) to refresh a channel; the ERP counts
returns awaiting inspection as on hand; a cycle count overwrites the ERP's figure, so a
till sale that occurred before the count but is posted after it is subtracted again.
"""

from __future__ import annotations

import math
from collections import defaultdict

from engine.model import MovementType as MT
from loadtest.marketplace_sim import Marketplace
from loadtest.retail_system import Move, SyncLags
from loadtest.retail_world import DCS, HOUR_S, MARKETS, START_HOUR, WEB, Cart, RetailConfig


class PointToPoint:
    """The ERP's belief and each channel's cache; calls to the ERP counted by purpose."""

    name = "baseline"

    def __init__(self, config: RetailConfig) -> None:
        self.config = config
        self.erp_on_hand: dict[tuple[str, str], int] = defaultdict(int)
        self.erp_committed: dict[str, int] = defaultdict(int)  # imported, not shipped
        self.erp_calls: dict[str, int] = defaultdict(int)
        self.lags = SyncLags()
        self._to_import: list[tuple[str, str, str, int, float]] = []  # kind, sku, loc, n, at
        self._web_cache: dict[str, int] = {}
        self.markets = {market: Marketplace(lag_min * 60) for market, lag_min
                        in zip(MARKETS, config.market_feed_lag_min)}
        self._cadences_s = {WEB: config.web_cache_refresh_min * 60,
                            **{market: minutes * 60 for market, minutes
                               in zip(MARKETS, config.market_cadence_min)}}
        self._refreshed_s: dict[str, float] = {}
        self._next_import_s = (config.nightly_import_hour - START_HOUR) % 24 * HOUR_S
        self._feeds = 0

    async def start(self, catalogue: dict[tuple[str, str], int], now_s: float) -> None:
        self.erp_on_hand.update(catalogue)
        await self.tick(now_s)

    # ---- channels ------------------------------------------------------------------------

    def _erp_available(self, sku: str) -> int:
        """What a connector reads as sellable: the DCs' on hand less imported orders."""
        return sum(self.erp_on_hand[sku, dc] for dc in DCS) - self.erp_committed[sku]

    def _refresh(self, channel: str, now_s: float) -> None:
        rows = len(self.erp_on_hand)
        self.erp_calls["on_hand_reads"] += max(1, math.ceil(rows / self.config.erp_page_rows))
        figures = {sku: max(0, self._erp_available(sku))
                   for sku in {sku for sku, _ in self.erp_on_hand}}
        if channel == WEB:
            self._web_cache = figures
            return
        self._feeds += 1
        self.markets[channel].receive(
            f"{channel}-feed-{self._feeds}",
            [{"sku": sku, "location": "", "available_to_sell": units}
             for sku, units in figures.items()], now_s)

    async def open_cart(self, cart: Cart, now_s: float) -> bool:
        return self._web_cache.get(cart.sku, 0) >= cart.units

    async def checkout(self, cart: Cart, now_s: float) -> str | None:
        """Sold if the cache says so: "" (any DC; the WMS picks), else None."""
        if self._web_cache.get(cart.sku, 0) < cart.units:
            return None
        self._web_cache[cart.sku] -= cart.units
        self._to_import.append(("order", cart.sku, "", cart.units, now_s))
        return ""

    async def abandon(self, cart: Cart, now_s: float) -> None:
        """Nothing was held, so nothing to give back."""

    def market_take(self, market: str, sku: str, units: int) -> bool:
        return self.markets[market].take(sku, units)

    async def market_forward(self, market: str, order_id: str, sku: str, units: int,
                             now_s: float) -> str | None:
        """The marketplace's order waits for the nightly import; the WMS picks any DC."""
        self._to_import.append(("order", sku, "", units, now_s))
        return ""

    async def shown(self, channel: str) -> dict[str, int]:
        if channel == WEB:
            return dict(self._web_cache)
        return dict(self.markets[channel].shown)

    # ---- stock sources -------------------------------------------------------------------

    async def post(self, moves: list[Move], now_s: float) -> None:
        """One call per post from a till batch or the returns desk; WMS shipments wait for
        the import; the ERP's own receipts and counts change its figure at once."""
        if moves and moves[0].source in ("pos", "returns"):
            self.erp_calls[f"{moves[0].source}_posts"] += 1
        for move in moves:
            key = (move.sku, move.location)
            if move.kind is MT.SHIPMENT:
                self._to_import.append(("shipment", move.sku, move.location, move.units,
                                        move.occurred_s))
                continue
            if move.kind is MT.CYCLE_COUNT:
                self.erp_on_hand[key] = move.units
            elif move.kind in (MT.RECEIPT, MT.RETURN_RECEIVED):
                self.erp_on_hand[key] += move.units
            elif move.kind in (MT.SALE, MT.RETURN_SCRAPPED):
                self.erp_on_hand[key] -= move.units
            if move.source != "erp":
                self.lags.record(now_s - move.occurred_s)

    async def tick(self, now_s: float) -> None:
        if now_s >= self._next_import_s:
            self._next_import_s += 24 * HOUR_S
            self._import(now_s)
        for channel, cadence_s in self._cadences_s.items():
            if now_s - self._refreshed_s.get(channel, -math.inf) >= cadence_s:
                self._refreshed_s[channel] = now_s
                self._refresh(channel, now_s)
        for market in self.markets.values():
            market.advance(now_s)

    def _import(self, now_s: float) -> None:
        """The nightly batch: orders become committed, shipments leave on hand."""
        lines = self._to_import
        self._to_import = []
        self.erp_calls["nightly_import"] += math.ceil(len(lines) / self.config.erp_batch_lines_max)
        for kind, sku, location, units, at_s in lines:
            if kind == "order":
                self.erp_committed[sku] += units
            else:
                self.erp_committed[sku] -= units
                self.erp_on_hand[sku, location] -= units
            self.lags.record(now_s - at_s)

    def finish(self, now_s: float) -> None:
        """Changes still waiting for the import count with the lag they have so far."""
        for *_, at_s in self._to_import:
            self.lags.record(now_s - at_s, pending=True)

    async def on_hand(self) -> dict[tuple[str, str], int]:
        return dict(self.erp_on_hand)

    async def erp_view(self) -> dict[tuple[str, str], int]:
        return dict(self.erp_on_hand)
