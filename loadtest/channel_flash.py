"""A flash sale through a late-hearing marketplace, on a simulated clock: the same seeded
sale with fixed buffers, then with velocity buffers, counting channel oversells.

The engine is real but in-process (a Router over LocalPartitions of PartitionHosts): the
marketplace channel's figures come from the partitions' own watch reads, the publisher is
engine/publisher.py, and the marketplace is loadtest/marketplace_sim.py's. Only time is
simulated, so a run is deterministic and takes a second or two instead of minutes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from engine.channel_publishing import WEBHOOK, Publish, Velocity
from engine.channels import DEFAULT, Buffer, Channel, ChannelRules
from engine.config import GatewayConfig, PartitionConfig
from engine.model import (
    Commit,
    Movement,
    ReservationStatus,
    Reserve,
    ReserveLine,
    WatchChanges,
    WatchSnapshot,
)
from engine.model import MovementType as MT
from engine.partition_host import PartitionHost
from engine.publisher import CHANGE, SNAPSHOT, SNAPSHOT_COMPLETE, Change, ChannelPublisher
from gateway.partitions import LocalPartitions
from gateway.router import Router
from loadtest.marketplace_sim import Buyers, Marketplace, MarketStats

START_MS = 1_700_000_000_000
MARKET, WEB = "marketplace", "web"


@dataclass(frozen=True)
class FlashConfig:
    skus: int = 12
    locations: tuple[str, ...] = ("dc-1", "dc-2")
    units_per_location: int = 25
    duration_s: float = 120.0
    tick_s: float = 0.1
    market_orders_per_s: float = 6.0
    web_orders_per_s: float = 3.0
    units_max: int = 2
    feed_lag_s: float = 5.0
    cadence_s: float = 2.0
    watch_interval_s: float = 0.2
    fixed_buffer_units: int = 1
    half_life_s: float = 10.0
    velocity_max_units: int = 50
    velocity_max_percent: float = 60.0
    seed: int = 7
    partitions: int = 2


@dataclass
class FlashResult:
    mode: str
    market: MarketStats
    web_units_sold: int
    units_stocked: int
    posts: int


def flash_rules(config: FlashConfig, velocity: bool) -> ChannelRules:
    """The marketplace channel: DCs, a fixed buffer per location, a webhook; with velocity,
    lag_s is the feed lag plus one cadence (a 2xx cannot show the marketplace's own lag)."""
    market = Channel(
        MARKET, locations=("dc-*",), buffer=Buffer(units=config.fixed_buffer_units),
        publish=Publish(WEBHOOK, "http://marketplace.sim/feed", config.cadence_s, 1_000.0),
        velocity=Velocity(config.half_life_s, config.feed_lag_s + config.cadence_s,
                          config.velocity_max_units, config.velocity_max_percent)
        if velocity else None)
    return ChannelRules((Channel(DEFAULT), Channel(WEB, locations=("dc-*",)), market))


class SimClock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def ms(self) -> int:
        return self.now_ms

    def s(self) -> float:
        return self.now_ms / 1000

    async def sleep(self, seconds: float) -> None:
        """Pacing inside one tick; the sale's clock moves only between ticks."""


class NoAckStore:
    async def record(self, channel: str, items) -> None:
        """Acknowledgements live in the publisher's book; nothing to persist here."""


class SimFeed:
    """WatchAvailability's reads, asked of the partitions directly, numbered like the hub."""

    def __init__(self, router: Router, publisher: ChannelPublisher, clock: SimClock,
                 channel: str = MARKET) -> None:
        self._router, self._publisher, self._clock = router, publisher, clock
        self._channel = channel
        self._cursors = [("", 0)] * router.partitions.count
        self._sequence = 0

    async def start(self) -> None:
        for partition in range(len(self._cursors)):
            answer = await self._router.submit(partition, WatchChanges((self._channel,)),
                                               None)
            self._cursors[partition] = (answer.ring, answer.total)
            after = 0
            while after >= 0:
                page = await self._router.submit(
                    partition, WatchSnapshot((self._channel,), (), after), None)
                self._offer(SNAPSHOT, page.figures)
                after = page.next_after
        self._publisher.offer(Change(SNAPSHOT_COMPLETE, "", "", 0, self._sequence,
                                     self._clock.ms()))

    async def poll(self) -> None:
        for partition, cursor in enumerate(self._cursors):
            answer = await self._router.submit(
                partition, WatchChanges((self._channel,), *cursor), None)
            assert not answer.refresh, "the partition's ring lost changes"
            self._cursors[partition] = (answer.ring, answer.total)
            self._offer(CHANGE, answer.figures)

    def _offer(self, kind: int, figures) -> None:
        for sku, location, values in figures:
            if values[0] is not None:
                if kind == CHANGE:
                    self._sequence += 1
                self._publisher.offer(Change(kind, sku, location, values[0], self._sequence,
                                             self._clock.ms()))


async def run_flash(config: FlashConfig, velocity: bool) -> FlashResult:
    """One seeded flash sale; the marketplace's oversells are in the result's `market`."""
    rules, clock = flash_rules(config, velocity), SimClock()
    hosts = [PartitionHost(p, PartitionConfig(channels=rules), clock_ms=clock.ms)
             for p in range(config.partitions)]
    router = Router(LocalPartitions(hosts), GatewayConfig(channels=rules), clock_ms=clock.ms)
    skus = [f"flash-{n:03d}" for n in range(config.skus)]
    await router.apply_movements([
        Movement(f"stock-{sku}-{location}", "wms", MT.RECEIPT, sku, location,
                 config.units_per_location) for sku in skus for location in config.locations])
    market = Marketplace(config.feed_lag_s)

    async def post(url, body, headers, timeout_s):
        market.receive(headers["Idempotency-Key"], json.loads(body)["items"], clock.s())
        return 200, None

    publisher = ChannelPublisher(rules.get(MARKET), post, NoAckStore(), clock_s=clock.s,
                                 wall_ms=clock.ms, sleep=clock.sleep, jitter=lambda: 0.5,
                                 run_id="flash")
    feed = SimFeed(router, publisher, clock)
    await feed.start()
    await publisher.flush()
    market_buyers = Buyers(skus, config.seed, config.units_max)
    web_buyers = Buyers(skus, config.seed + 1, config.units_max)
    orders = web_units = 0
    last_watch_ms = last_flush_ms = clock.now_ms
    for _ in range(round(config.duration_s / config.tick_s)):
        clock.now_ms += round(config.tick_s * 1000)
        market.advance(clock.s())
        for _ in range(web_buyers.arrivals(config.web_orders_per_s, config.tick_s)):
            sku, units = web_buyers.order()
            orders += 1
            web_units += units if await _order(router, WEB, sku, units, f"web-{orders}") else 0
        for _ in range(market_buyers.arrivals(config.market_orders_per_s, config.tick_s)):
            sku, units = market_buyers.order()
            if market.take(sku, units):
                orders += 1
                market.settle(units, await _order(router, MARKET, sku, units, f"mkt-{orders}"))
        if clock.now_ms - last_watch_ms >= config.watch_interval_s * 1000:
            last_watch_ms = clock.now_ms
            await feed.poll()
        if clock.now_ms - last_flush_ms >= config.cadence_s * 1000:
            last_flush_ms = clock.now_ms
            await publisher.flush()
    return FlashResult("velocity" if velocity else "fixed", market.stats, web_units,
                       config.skus * len(config.locations) * config.units_per_location,
                       publisher.requests["ok"])


async def _order(router: Router, channel: str, sku: str, units: int, order_id: str) -> bool:
    """Reserve anywhere in the channel's group, then commit: True if the engine honoured it."""
    held = await router.reserve(Reserve(f"{order_id}-r", "", (ReserveLine(sku, "", units),),
                                        channel=channel, order_ref=order_id))
    if held.status != ReservationStatus.HELD:
        return False
    await router.commit(Commit(held.reservation_id, f"{order_id}-c", order_id))
    return True


async def compare(config: FlashConfig) -> tuple[FlashResult, FlashResult]:
    """The same sale twice: fixed buffers, then velocity buffers."""
    return await run_flash(config, velocity=False), await run_flash(config, velocity=True)


def summary(result: FlashResult) -> dict:
    return {"mode": result.mode, **asdict(result.market), "web_units_sold": result.web_units_sold,
            "units_stocked": result.units_stocked, "webhook_posts": result.posts}
