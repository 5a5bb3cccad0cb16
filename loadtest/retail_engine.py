"""The engine side of a retail day, in-process on a simulated clock: the real Router over
PartitionHosts (LocalPartitions), the real channel rules, publisher (engine/publisher.py)
and marketplaces (loadtest/marketplace_sim.py), and the sync job's own windowing
(engine/erp_plan.py) posting into the ERP simulator's ledger (loadtest/erp_ledger.py).

What is not the real thing: gRPC, Ray, the Redis journal and the sync job's HTTP client
and retries are left out (the journal's per-batch ledger changes are taken from each
partition as it applies a batch), so a simulated day runs in seconds and the same seed
gives the same day.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence

from engine.channel_publishing import WEBHOOK, Publish, Velocity
from engine.channels import DEFAULT, Channel, ChannelRules
from engine.config import GatewayConfig, PartitionConfig
from engine.erp_plan import Window, plan_window
from engine.journal import LedgerEntry
from engine.model import (
    Commit,
    FenceItem,
    FenceShown,
    GetAvailability,
    ItemRef,
    Movement,
    MovementCode,
    Outcome,
    Release,
    ReservationStatus,
    Reserve,
    ReserveLine,
    SettleFences,
)
from engine.model import MovementType as MT
from engine.partition_host import PartitionHost
from engine.publisher import ChannelPublisher
from gateway.partitions import LocalPartitions
from gateway.router import Router
from loadtest.channel_flash import START_MS, NoAckStore, SimClock, SimFeed
from loadtest.erp_contract import parse_adjustments
from loadtest.erp_ledger import Ledger
from loadtest.marketplace_sim import Marketplace
from loadtest.retail_system import Move, SyncLags
from loadtest.retail_world import DCS, MARKETS, WEB, Cart, RetailConfig

ERP_SOURCES = ("erp",)
READ_ITEMS_MAX = 500  # items per GetAvailability, the request limit


def retail_rules(config: RetailConfig, webhook_urls: Sequence[str] = ()) -> ChannelRules:
    """The storefront reserves from the DCs; each marketplace sells the DCs' stock, hears of
    it by webhook on its cadence, and is shown less of what sells fast: velocity buffers
    whose lag is its feed lag plus one cadence. Each marketplace is ring-fenced: what a
    feed shows it stays its own until that lag has passed (fence_hold_s defaults to it).
    A fence keeps whatever a channel is shown, so each marketplace is shown (allocated)
    only its share of the day's online demand, as an allocation rule would; without it
    the first marketplace to publish would fence nearly every unit."""
    urls = list(webhook_urls) or [f"http://{market}.sim/feed" for market in MARKETS]
    shares = market_shares(config)
    markets = tuple(
        Channel(market, locations=("dc-*",), share_percent=shares[market],
                publish=Publish(WEBHOOK, url, cadence_min * 60, 1_000.0),
                velocity=Velocity(half_life_s=1_800.0, lag_s=(cadence_min + lag_min) * 60,
                                  max_units=50, max_percent=100.0),
                ring_fence=True)
        for market, url, cadence_min, lag_min in zip(
            MARKETS, urls, config.market_cadence_min, config.market_feed_lag_min))
    return ChannelRules((Channel(DEFAULT), Channel(WEB, locations=("dc-*",)), *markets))


def market_shares(config: RetailConfig) -> dict[str, float]:
    """Each marketplace's part of the day's online orders, in percent: its allocation."""
    online_orders = (config.web_carts_per_day * (1 - config.abandon_rate)
                     + sum(config.market_orders_per_day))
    return {market: round(100 * per_day / online_orders, 1)
            for market, per_day in zip(MARKETS, config.market_orders_per_day)}


def movement(move: Move) -> Movement:
    return Movement(move.event_id, move.source, move.kind, move.sku, move.location, move.units,
                    occurred_at_unix_ms=START_MS + round(move.occurred_s * 1000),
                    order_ref=move.order_ref)


class RouterFences:
    """A publisher's fences raised and settled through the Router, as the gateway does for
    the FenceChannel RPC."""

    def __init__(self, router: Router) -> None:
        self._router = router

    async def shown(self, channel: str, items: list[tuple[str, str, int]],
                    publish_seq: int) -> None:
        await self._checked(FenceShown(channel, tuple(FenceItem(*item) for item in items),
                                       publish_seq))

    async def settle(self, channel: str, publish_seq: int) -> None:
        await self._checked(SettleFences(channel, publish_seq))

    async def _checked(self, command) -> None:
        answer = await self._router.fence_channel(command)
        if answer.outcome is not Outcome.OK:
            raise RuntimeError(f"{type(command).__name__} refused: {answer.message}")


class InProcessEngine:
    """The engine's partitions, channels and ERP sync, on the day's simulated clock."""

    name = "engine"

    def __init__(self, config: RetailConfig) -> None:
        self.config, self.clock = config, SimClock()
        rules = retail_rules(config)
        self._window = Window(ERP_SOURCES, lines_max=1_000_000)
        self.hosts = [PartitionHost(p, PartitionConfig(channels=rules), clock_ms=self.clock.ms,
                                    on_applied=self._applied_by(p))
                      for p in range(config.partitions)]
        for host in self.hosts:
            host.adopt_channel_rules()
        self.router = Router(LocalPartitions(self.hosts), GatewayConfig(channels=rules),
                             clock_ms=self.clock.ms)
        self.markets = {market: Marketplace(lag_min * 60) for market, lag_min
                        in zip(MARKETS, config.market_feed_lag_min)}
        self.publishers = {market: ChannelPublisher(
            rules.get(market), self._poster(market), NoAckStore(), clock_s=self.clock.s,
            wall_ms=self.clock.ms, sleep=self.clock.sleep, jitter=lambda: 0.5,
            run_id=market, fences=RouterFences(self.router)) for market in MARKETS}
        self.feeds = {market: SimFeed(self.router, publisher, self.clock, market)
                      for market, publisher in self.publishers.items()}
        self.ledger = Ledger(":memory:")
        self.erp_calls: dict[str, int] = defaultdict(int)
        self.lags = SyncLags()
        self.rejected_movements: list[str] = []
        self._unsynced_s: list[float] = []  # when each change not yet in the ERP happened
        self._plans = 0
        self._windowed_s = 0.0
        self._flushed_s: dict[str, float] = {}
        self._rows: list[tuple[str, str]] = []
        self._holds: dict[str, tuple[str, str]] = {}  # cart -> (reservation id, location)

    def _applied_by(self, partition: int):
        def applied(commands, now_ms: int, first_seq: int, last_seq: int) -> None:
            changes = tuple(self.hosts[partition].state.ledger_changes())
            self._window.add(partition, LedgerEntry(first_seq, last_seq, now_ms, changes))
        return applied

    def _poster(self, market: str):
        async def post(url, body, headers, timeout_s):
            self.markets[market].receive(headers["Idempotency-Key"], json.loads(body)["items"],
                                         self.clock.s())
            return 200, None
        return post

    # ---- the day -------------------------------------------------------------------------

    async def start(self, catalogue: dict[tuple[str, str], int], now_s: float) -> None:
        """The ERP's opening import, as receipts from the ERP (which knows them already)."""
        self.clock.now_ms = START_MS + round(now_s * 1000)
        self._rows = sorted(catalogue)
        for (sku, location), units in catalogue.items():
            self.ledger.set_row(sku, location, units)
        await self._apply([Move(MT.RECEIPT, "erp", sku, location, units, now_s,
                                f"erp-import-{sku}-{location}")
                           for (sku, location), units in catalogue.items() if units])
        self._unsynced_s.clear()
        for feed in self.feeds.values():
            await feed.start()
        for market, publisher in self.publishers.items():
            await publisher.flush()
            self._flushed_s[market] = now_s

    async def tick(self, now_s: float) -> None:
        self.clock.now_ms = START_MS + round(now_s * 1000)
        for host in self.hosts:
            host.sweep()
        for market, feed in self.feeds.items():
            await self.publishers[market].settle_due()
            await feed.poll()
            cadence_s = self.publishers[market].channel.publish.cadence_s
            if now_s - self._flushed_s[market] >= cadence_s:
                self._flushed_s[market] = now_s
                await self.publishers[market].flush()
            self.markets[market].advance(self.clock.s())
        if now_s - self._windowed_s >= self.config.erp_window_s:
            self._windowed_s = now_s
            self._sync(now_s)

    def _sync(self, now_s: float) -> None:
        """What engine/erp_sync.py does each window: net changes, in batches, posted."""
        window, self._window = self._window, Window(ERP_SOURCES, lines_max=1_000_000)
        self._plans += 1
        plan = plan_window(window, "retail-day", self._plans, self.config.erp_batch_lines_max)
        for index, lines in enumerate(plan.batches):
            key = plan.key(index)
            body = {"batch_id": key, "lines": [line._asdict() for line in lines]}
            answer = self.ledger.submit(key, parse_adjustments(json.dumps(body).encode()), now_s)
            assert answer.status == 200, answer
            self.erp_calls["adjustment_posts"] += 1
        for happened_s in self._unsynced_s:
            self.lags.record(now_s - happened_s)
        self._unsynced_s.clear()

    def finish(self, now_s: float) -> None:
        self._sync(now_s)

    # ---- channels ------------------------------------------------------------------------

    async def open_cart(self, cart: Cart, now_s: float) -> bool:
        held = await self.router.reserve(Reserve(
            f"{cart.cart_id}-r", "", (ReserveLine(cart.sku, "", cart.units),),
            ttl_seconds=round(self.config.hold_ttl_min * 60), channel=WEB,
            order_ref=cart.cart_id))
        if held.status == ReservationStatus.HELD:
            self._holds[cart.cart_id] = (held.reservation_id, held.lines[0].location)
            return True
        return False

    async def checkout(self, cart: Cart, now_s: float) -> str | None:
        reservation_id, location = self._holds.pop(cart.cart_id)
        answer = await self.router.commit(Commit(reservation_id, f"{cart.cart_id}-c",
                                                 cart.cart_id))
        if answer.outcome is not Outcome.OK:
            return None
        self._unsynced_s.append(now_s)
        return location

    async def abandon(self, cart: Cart, now_s: float) -> None:
        reservation_id, _ = self._holds.pop(cart.cart_id)
        if cart.release:  # else the partition's sweep expires it at its TTL
            await self.router.release(Release(reservation_id, f"{cart.cart_id}-x", "abandoned"))

    def market_take(self, market: str, sku: str, units: int) -> bool:
        return self.markets[market].take(sku, units)

    async def market_forward(self, market: str, order_id: str, sku: str, units: int,
                             now_s: float) -> str | None:
        """Reserve anywhere in the marketplace's group, then commit; None if refused."""
        held = await self.router.reserve(Reserve(f"{order_id}-r", "",
                                                 (ReserveLine(sku, "", units),),
                                                 channel=market, order_ref=order_id))
        honoured = held.status == ReservationStatus.HELD
        if honoured:
            await self.router.commit(Commit(held.reservation_id, f"{order_id}-c", order_id))
            self._unsynced_s.append(now_s)
        self.markets[market].settle(units, honoured)
        return held.lines[0].location if honoured else None

    async def shown(self, channel: str) -> dict[str, int]:
        if channel in self.markets:
            return dict(self.markets[channel].shown)
        figures: dict[str, int] = defaultdict(int)
        for item in await self._read([(sku, dc) for sku in {s for s, _ in self._rows}
                                      for dc in DCS], channel):
            figures[item.sku] += max(0, item.available_to_sell)
        return dict(figures)

    # ---- stock sources -------------------------------------------------------------------

    async def post(self, moves: Sequence[Move], now_s: float) -> None:
        if moves and moves[0].source == "erp":  # the ERP made it: its ledger has it already
            for move in moves:
                row = self.ledger.row(move.sku, move.location)
                counted = move.kind is MT.CYCLE_COUNT
                self.ledger.set_row(move.sku, move.location, move.units if counted else
                                    (row.on_hand if row else 0) + move.units)
        else:
            self._unsynced_s.extend(move.occurred_s for move in moves)
        await self._apply(moves)

    async def _apply(self, moves: Sequence[Move]) -> None:
        for start in range(0, len(moves), 1_000):
            chunk = moves[start:start + 1_000]
            results = await self.router.apply_movements([movement(m) for m in chunk])
            for result in results:
                if result.code is MovementCode.REJECTED and len(self.rejected_movements) < 20:
                    self.rejected_movements.append(f"{result.event_id}: {result.message}")

    async def _read(self, items: list[tuple[str, str]], channel: str = ""):
        found = []
        for start in range(0, len(items), READ_ITEMS_MAX):
            refs = tuple(ItemRef(*item) for item in items[start:start + READ_ITEMS_MAX])
            found += (await self.router.get_availability(GetAvailability(refs, channel))).items
        return found

    async def on_hand(self) -> dict[tuple[str, str], int]:
        return {(item.sku, item.location): item.on_hand for item in await self._read(self._rows)}

    async def erp_view(self) -> dict[tuple[str, str], int]:
        return {(row.sku, row.location): row.on_hand for row in self.ledger.rows(10**7)}
