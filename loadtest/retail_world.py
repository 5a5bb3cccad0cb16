"""A retail day's outside world, seeded: the catalogue, shoppers, marketplace buyers, store
tills, store outages, shrink, ERP receipts and cycle counts. The same seed gives the same
demand whatever system serves it; what a system accepts then shapes what ships and returns.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

DCS = ("dc-east", "dc-west")
WEB, MARKET_A, MARKET_B, STORES = "web", "marketplace-a", "marketplace-b", "stores"
MARKETS = (MARKET_A, MARKET_B)
START_HOUR = 6  # the day starts at 06:00, so the nightly import (02:00) falls inside it
HOUR_S = 3_600.0
# Relative demand by hour of day (00..23): quiet nights, a lunch bump, an evening peak.
HOURLY_SHAPE = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.1, 1.2,
                1.3, 1.2, 1.1, 1.1, 1.2, 1.4, 1.7, 1.9, 1.8, 1.4, 0.9, 0.5)


@dataclass(frozen=True)
class RetailConfig:
    hours_simulated: float = 24.0
    seed: int = 1
    stores: int = 180
    skus: int = 60
    tick_s: float = 60.0  # simulated seconds per step
    # Orders per simulated day at an average hour, before the hourly shape.
    web_carts_per_day: float = 2_400.0
    market_orders_per_day: tuple[float, float] = (1_200.0, 600.0)
    store_units_per_day: float = 30.0  # per store
    units_max: int = 2
    # Storefront carts: minutes from opening to checkout, and what becomes of them.
    think_min: tuple[float, float] = (2.0, 12.0)
    hold_ttl_min: float = 15.0
    abandon_rate: float = 0.3
    abandon_release_share: float = 0.5
    # Marketplaces: how often they take a feed, and how late they show it (minutes).
    market_cadence_min: tuple[float, float] = (5.0, 30.0)
    market_feed_lag_min: tuple[float, float] = (5.0, 15.0)
    # The point-to-point storefront refreshes its cached quantities this often (minutes).
    web_cache_refresh_min: float = 15.0
    pos_batch_min: float = 5.0
    store_offline_per_hour: float = 0.02  # chance an online store drops off each hour
    store_offline_h: tuple[float, float] = (1.0, 4.0)
    shrink_per_store_day: float = 1.0  # units lost unseen per store per day
    counts_per_hour: int = 120  # ERP cycle counts (store and DC SKU-locations)
    receipt_hours: tuple[float, ...] = (10.0, 16.0)
    pick_delay_min: tuple[float, float] = (30.0, 120.0)
    return_rate: float = 0.08
    return_delay_h: tuple[float, float] = (2.0, 8.0)
    inspect_delay_h: tuple[float, float] = (1.0, 3.0)
    restock_share: float = 0.75
    nightly_import_hour: float = 2.0
    erp_window_s: float = 60.0  # the sync job's window, in simulated seconds
    erp_batch_lines_max: int = 500
    erp_page_rows: int = 1_000  # rows per on-hand page the point-to-point connectors read
    sample_every_s: float = 900.0  # divergence sampled this often
    partitions: int = 4

    def check(self) -> None:
        if self.hours_simulated <= 0 or self.stores < 1 or self.skus < 2 or self.tick_s <= 0:
            raise ValueError("hours, --stores, --skus (at least 2) and the tick must be "
                             "above 0")


@dataclass(frozen=True)
class Cart:
    cart_id: str
    sku: str
    units: int
    checkout_s: float
    abandon: bool
    release: bool


@dataclass(frozen=True)
class Sale:
    store: str
    sku: str
    units: int


@dataclass
class TickDemand:
    carts: list[Cart] = field(default_factory=list)
    market_orders: list[tuple[str, str, str, int]] = field(default_factory=list)  # m, id, sku, n
    sales: list[Sale] = field(default_factory=list)  # wanted at a till, if on the shelf
    shrink: list[tuple[str, str, int]] = field(default_factory=list)
    receipts: list[tuple[str, str, int]] = field(default_factory=list)
    counts: list[tuple[str, str]] = field(default_factory=list)
    offline: list[tuple[str, float]] = field(default_factory=list)  # store, back at s


def sku_names(config: RetailConfig) -> list[str]:
    return [f"SKU-{n:05d}" for n in range(1, config.skus + 1)]


def store_names(config: RetailConfig) -> list[str]:
    return [f"store-{n:03d}" for n in range(1, config.stores + 1)]


def hour_of_day(config: RetailConfig, now_s: float) -> float:
    return (START_HOUR + now_s / HOUR_S) % 24


class World:
    """The seeded demand of each step; draws nothing from what a system did."""

    def __init__(self, config: RetailConfig) -> None:
        self.config = config
        self.skus = sku_names(config)
        self.stores = store_names(config)
        self._draw = random.Random(config.seed)
        self._weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.skus))]
        total = sum(self._weights)
        self.share = {sku: weight / total for sku, weight in zip(self.skus, self._weights)}
        self._carts = 0
        self._orders = 0
        self._offline_until: dict[str, float] = {}

    def catalogue(self) -> dict[tuple[str, str], int]:
        """Opening stock: each DC holds about 40% of a day's online demand for a SKU, so
        the hot ones sell out before the receipts; each store a few of each."""
        config, draw = self.config, random.Random(self.config.seed + 1)
        online_units = (config.web_carts_per_day * (1 - config.abandon_rate)
                        + sum(config.market_orders_per_day)) * (1 + config.units_max) / 2
        stock = {}
        for sku in self.skus:
            for dc in DCS:
                stock[sku, dc] = max(2, round(online_units * self.share[sku] * 0.4 / len(DCS)))
            for store in self.stores:
                stock[sku, store] = draw.randint(2, 10)
        return stock

    def _arrivals(self, per_day: float, now_s: float) -> int:
        """Poisson arrivals in one step at this hour's rate (by inversion: seeded)."""
        mean = per_day / 24 * HOURLY_SHAPE[int(hour_of_day(self.config, now_s))] \
            * self.config.tick_s / HOUR_S
        count, threshold, product = 0, math.exp(-mean), self._draw.random()
        while product > threshold:
            count += 1
            product *= self._draw.random()
        return count

    def _sku(self) -> str:
        return self._draw.choices(self.skus, self._weights)[0]

    def step(self, now_s: float) -> TickDemand:
        config, draw, demand = self.config, self._draw, TickDemand()
        for _ in range(self._arrivals(config.web_carts_per_day, now_s)):
            self._carts += 1
            abandon = draw.random() < config.abandon_rate
            demand.carts.append(Cart(
                f"cart-{self._carts}", self._sku(), draw.randint(1, config.units_max),
                now_s + draw.uniform(*config.think_min) * 60, abandon,
                abandon and draw.random() < config.abandon_release_share))
        for market, per_day in zip(MARKETS, config.market_orders_per_day):
            for _ in range(self._arrivals(per_day, now_s)):
                self._orders += 1
                demand.market_orders.append((market, f"{market}-{self._orders}", self._sku(),
                                             draw.randint(1, config.units_max)))
        per_store = config.store_units_per_day / 1.5  # a till sale is 1 or 2 units
        for _ in range(self._arrivals(per_store * config.stores, now_s)):
            demand.sales.append(Sale(draw.choice(self.stores), self._sku(), draw.randint(1, 2)))
        if draw.random() < config.shrink_per_store_day * config.stores * config.tick_s / 86_400:
            demand.shrink.append((draw.choice(self.stores), draw.choice(self.skus), 1))
        self._hourly(now_s, demand)
        return demand

    def _hourly(self, now_s: float, demand: TickDemand) -> None:
        """Once an hour: counts and store outages; at the receipt hours, purchase orders."""
        config, draw = self.config, self._draw
        hour_s = (now_s // HOUR_S) * HOUR_S
        if not hour_s <= now_s < hour_s + config.tick_s:
            return
        for _ in range(config.counts_per_hour):
            location = draw.choice(DCS) if draw.random() < 0.05 else draw.choice(self.stores)
            demand.counts.append((draw.choice(self.skus), location))
        for store in self.stores:
            if self._offline_until.get(store, -1.0) <= now_s and \
                    draw.random() < config.store_offline_per_hour:
                back_s = now_s + draw.uniform(*config.store_offline_h) * HOUR_S
                self._offline_until[store] = back_s
                demand.offline.append((store, back_s))
        if any(abs(hour_of_day(config, now_s) - hour) < 1e-6 for hour in config.receipt_hours):
            online_units = config.web_carts_per_day + sum(config.market_orders_per_day)
            for sku in self.skus:
                if draw.random() < 0.5:
                    for dc in DCS:
                        demand.receipts.append((sku, dc, max(1, round(
                            online_units * self.share[sku] * 0.25 * draw.uniform(0.5, 1.5)))))
