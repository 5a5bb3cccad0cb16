"""A marketplace that hears quantities late: it takes the publisher's webhook POSTs, shows
each SKU's network figure `feed_lag_s` after it arrives, and sells against what it shows.

Every order it takes is then placed on the engine as a Reserve (empty location: the
channel's reserve-anywhere) and a Commit on the marketplace's channel; an order the
engine refuses is a channel oversell: units the marketplace sold that cannot be honoured.

    availability sim marketplace --engine 127.0.0.1:50051 --channel marketplace-a \\
        --port 8090 --feed-lag-s 5 --orders-per-s 20 --duration-s 60

and point the channel's `webhook_url` at http://127.0.0.1:8090/feed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import math
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)
# Batches waiting out the feed lag; past it the oldest is applied early (bounded memory).
QUEUED_BATCHES_MAX = 10_000
# Idempotency keys remembered, so a retried POST is applied once.
KEYS_REMEMBERED_MAX = 10_000


@dataclass
class MarketStats:
    feeds: int = 0
    duplicate_feeds: int = 0
    orders: int = 0
    units_sold: int = 0
    orders_refused_by_marketplace: int = 0  # shown too little: the buyer went away
    oversold_orders: int = 0  # taken by the marketplace, refused by the engine
    oversold_units: int = 0
    engine_errors: int = 0


class Marketplace:
    """What the marketplace shows per SKU (the network figure, location ""), on its clock."""

    def __init__(self, feed_lag_s: float) -> None:
        self.feed_lag_s = feed_lag_s
        self.shown: dict[str, int] = {}
        self.stats = MarketStats()
        self._queue: collections.deque[tuple[float, list[dict]]] = collections.deque()
        self._keys: collections.OrderedDict[str, None] = collections.OrderedDict()

    def receive(self, key: str, items: list[dict], now_s: float) -> bool:
        """Queue a feed to apply after the lag; False for a key already taken."""
        if key in self._keys:
            self.stats.duplicate_feeds += 1
            return False
        self._keys[key] = None
        while len(self._keys) > KEYS_REMEMBERED_MAX:
            self._keys.popitem(last=False)
        self.stats.feeds += 1
        self._queue.append((now_s + self.feed_lag_s, items))
        while len(self._queue) > QUEUED_BATCHES_MAX:
            self._apply(self._queue.popleft()[1])
        return True

    def due_s(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def advance(self, now_s: float) -> None:
        """Apply every feed whose lag has passed, oldest first."""
        while self._queue and self._queue[0][0] <= now_s:
            self._apply(self._queue.popleft()[1])

    def _apply(self, items: list[dict]) -> None:
        for item in items:
            if item["location"] == "":
                self.shown[item["sku"]] = int(item["available_to_sell"])

    def take(self, sku: str, units: int) -> bool:
        """Sell against the shown figure, counting it down as a marketplace does."""
        if self.shown.get(sku, 0) < units:
            self.stats.orders_refused_by_marketplace += 1
            return False
        self.shown[sku] -= units
        self.stats.orders += 1
        self.stats.units_sold += units
        return True

    def settle(self, units: int, honoured: bool | None) -> None:
        """The engine's answer to an order taken: honoured, refused (an oversell) or None
        (an error: neither)."""
        if honoured is None:
            self.stats.engine_errors += 1
        elif not honoured:
            self.stats.oversold_orders += 1
            self.stats.oversold_units += units


@dataclass
class Buyers:
    """Seeded order arrivals: SKUs drawn with Zipf-like weights, 1..units_max units each."""

    skus: list[str]
    seed: int = 1
    units_max: int = 2
    skew: float = 1.1
    _draw: random.Random = field(init=False)
    _weights: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self._draw = random.Random(self.seed)
        self._weights = [1 / (rank + 1) ** self.skew for rank in range(len(self.skus))]

    def arrivals(self, rate_per_s: float, dt_s: float) -> int:
        """How many orders arrive in dt_s (Poisson, by inversion: deterministic per seed)."""
        mean, count = rate_per_s * dt_s, 0
        threshold, product = math.exp(-mean), self._draw.random()
        while product > threshold:
            count += 1
            product *= self._draw.random()
        return count

    def order(self) -> tuple[str, int]:
        sku = self._draw.choices(self.skus, self._weights)[0]
        return sku, self._draw.randint(1, self.units_max)


# (sku, units, order id) -> honoured by the engine (True), refused (False), or None.
PlaceOrder = Callable[[str, int, str], Awaitable[bool | None]]


def client_orders(client, channel: str) -> PlaceOrder:
    """Orders placed on a running engine through AvailabilityClient: Reserve then Commit."""
    from inventory.v1 import availability_pb2 as pb

    from gateway.client import AvailabilityError

    async def place(sku: str, units: int, order_id: str) -> bool | None:
        try:
            held = await client.reserve([(sku, "", units)], idempotency_key=f"{order_id}-r",
                                        channel=channel, order_ref=order_id, timeout=10)
            if held.status != pb.RESERVATION_STATUS_HELD:
                return False
            await client.commit(held.reservation_id, idempotency_key=f"{order_id}-c",
                                order_ref=order_id, timeout=10)
            return True
        except AvailabilityError as error:
            log.warning("order %s: %s", order_id, error)
            return None

    return place


@dataclass(frozen=True)
class SimulatorConfig:
    engine: str = "127.0.0.1:50051"
    channel: str = "marketplace"
    host: str = "127.0.0.1"
    port: int = 0
    feed_lag_s: float = 5.0
    orders_per_s: float = 10.0
    units_max: int = 2
    skus: tuple[str, ...] = ()  # what buyers look for; empty: every SKU the feed shows
    seed: int = 1
    duration_s: float | None = None  # None: until SIGTERM
    tick_s: float = 0.05


async def start_receiver(market: Marketplace, host: str = "127.0.0.1", port: int = 0,
                         clock_s: Callable[[], float] = time.monotonic):
    """The webhook (POST /feed) and GET /_sim/stats; returns (runner, port)."""
    from aiohttp import web

    async def feed(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            items = body["items"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "body: needs items"}, status=400)
        key = request.headers.get("Idempotency-Key") or body.get("batch_id", "")
        market.receive(key, items, clock_s())
        return web.json_response({"accepted": len(items)})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({**asdict(market.stats), "shown": market.shown})

    app = web.Application()
    app.add_routes([web.post("/feed", feed), web.get("/_sim/stats", stats)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, runner.addresses[0][1]


async def run_buyers(market: Marketplace, buyers: Buyers, place: PlaceOrder,
                     config: SimulatorConfig, stop: asyncio.Event) -> None:
    """Apply due feeds and let buyers order, every tick, until `stop`."""
    started_s, orders = time.monotonic(), 0
    while not stop.is_set():
        now_s = time.monotonic()
        market.advance(now_s)
        placing = []
        for _ in range(buyers.arrivals(config.orders_per_s, config.tick_s)):
            sku, units = buyers.order()
            if market.take(sku, units):
                orders += 1
                placing.append((units, place(sku, units, f"mkt-{config.seed}-{orders}")))
        for units, honoured in zip([u for u, _ in placing],
                                   await asyncio.gather(*(p for _, p in placing))):
            market.settle(units, honoured)
        if config.duration_s is not None and now_s - started_s >= config.duration_s:
            return
        await asyncio.sleep(config.tick_s)


async def simulate(config: SimulatorConfig) -> MarketStats:
    """The receiver plus buyers placing orders on the engine, until the duration or a signal."""
    from gateway.client import AvailabilityClient

    market = Marketplace(config.feed_lag_s)
    runner, port = await start_receiver(market, config.host, config.port)
    print(f"availability sim marketplace: webhook on http://{config.host}:{port}/feed, "
          f"selling {config.channel!r} on {config.engine}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    skus = list(config.skus)
    if not skus:  # sell whatever the feed has shown, once it has shown something
        while not market.shown and not stop.is_set():
            market.advance(time.monotonic())
            await asyncio.sleep(config.tick_s)
        skus = sorted(market.shown)
    buyers = Buyers(skus, config.seed, config.units_max)
    try:
        async with AvailabilityClient(config.engine) as client:
            await run_buyers(market, buyers, client_orders(client, config.channel), config,
                             stop)
    finally:
        await runner.cleanup()
    print(json.dumps(asdict(market.stats)), flush=True)
    return market.stats


def build_parser(parser: argparse.ArgumentParser) -> None:
    defaults = SimulatorConfig()
    parser.add_argument("--engine", default=defaults.engine, help="the gateway to order on")
    parser.add_argument("--channel", default=defaults.channel,
                        help="the marketplace's channel in the engine")
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=8090, help="webhook port (0: any free)")
    parser.add_argument("--feed-lag-s", type=float, default=defaults.feed_lag_s,
                        help="seconds from a feed's arrival to the marketplace showing it")
    parser.add_argument("--orders-per-s", type=float, default=defaults.orders_per_s)
    parser.add_argument("--units-max", type=int, default=defaults.units_max,
                        help="units per order: 1..this")
    parser.add_argument("--sku", action="append", dest="skus", default=[],
                        help="a SKU buyers look for (repeatable; default: all shown)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--duration-s", type=float, default=None,
                        help="stop after this long and print the counts (default: SIGTERM)")


def main(args: argparse.Namespace) -> int:
    if args.feed_lag_s < 0 or args.orders_per_s <= 0 or args.units_max < 1:
        raise SystemExit("sim marketplace: --feed-lag-s must be at least 0, --orders-per-s "
                         "above 0 and --units-max at least 1")
    config = SimulatorConfig(engine=args.engine, channel=args.channel, host=args.host,
                             port=args.port, feed_lag_s=args.feed_lag_s,
                             orders_per_s=args.orders_per_s, units_max=args.units_max,
                             skus=tuple(args.skus), seed=args.seed, duration_s=args.duration_s)
    asyncio.run(simulate(config))
    return 0
