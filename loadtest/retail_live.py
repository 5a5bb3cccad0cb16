"""The retail day's systems side against a running engine, in real time: orders through
AvailabilityClient, movements through ApplyMovements, marketplaces fed by the engine's own
publisher over HTTP, and the ERP simulator kept in step by the real sync job.

Times the world gives in simulated seconds become wall time at `speed` simulated seconds
per wall second: hold TTLs, and the instant each movement occurred."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityError
from loadtest.marketplace_sim import Marketplace
from loadtest.retail_system import Move, SyncLags
from loadtest.retail_world import DCS, WEB, Cart, RetailConfig

READ_ITEMS_MAX = 500
MOVES_PER_CALL = 1_000
CALL_TIMEOUT_S = 30.0


class LiveEngine:
    """A real engine at `client`, the ERP simulator `erp` (loadtest/erp_sim.py) and the
    marketplaces its publisher feeds."""

    name = "engine"

    def __init__(self, config: RetailConfig, client, erp, markets: dict[str, Marketplace],
                 speed: float) -> None:
        self.config, self.client, self.erp, self.markets = config, client, erp, markets
        self.speed = speed
        self.lags = SyncLags()  # measured by the sync job itself: see its metrics
        self.errors: dict[str, int] = defaultdict(int)
        self._start_wall_ms = time.time_ns() // 1_000_000
        self._holds: dict[str, tuple[str, str]] = {}
        self._rows: list[tuple[str, str]] = []

    @property
    def erp_calls(self) -> dict[str, int]:
        return {"adjustment_posts": self.erp.requests_total}

    def _wall_ms(self, simulated_s: float) -> int:
        """When a movement occurred, never later than now (a count as of the future is
        refused)."""
        return min(time.time_ns() // 1_000_000,
                   self._start_wall_ms + round(simulated_s / self.speed * 1000))

    async def start(self, catalogue: dict[tuple[str, str], int], now_s: float) -> None:
        """The ERP's opening import: its ledger has the rows; the engine gets receipts."""
        self._rows = sorted(catalogue)
        for (sku, location), units in catalogue.items():
            self.erp.ledger.set_row(sku, location, units)
        await self._apply([Move(pb.MOVEMENT_TYPE_RECEIPT, "erp", sku, location, units, now_s,
                                f"erp-import-{self._start_wall_ms}-{sku}-{location}")
                           for (sku, location), units in catalogue.items() if units])

    async def tick(self, now_s: float) -> None:
        for market in self.markets.values():
            market.advance(time.monotonic())

    def finish(self, now_s: float) -> None:
        """The sync job keeps draining after the day; nothing to flush here."""

    async def open_cart(self, cart: Cart, now_s: float) -> bool:
        ttl_s = max(1, round(self.config.hold_ttl_min * 60 / self.speed))
        try:
            held = await self.client.reserve([(cart.sku, "", cart.units)],
                                             idempotency_key=self._key(cart.cart_id, "r"),
                                             ttl_seconds=ttl_s, channel=WEB,
                                             order_ref=cart.cart_id, timeout=CALL_TIMEOUT_S)
        except AvailabilityError as error:
            self.errors[error.code.name] += 1
            return False
        if held.status != pb.RESERVATION_STATUS_HELD:
            return False
        self._holds[cart.cart_id] = (held.reservation_id, held.lines[0].location)
        return True

    def _key(self, name: str, step: str) -> str:
        # Unique per demo run: an engine restarted on the same data must not replay them.
        return f"{self._start_wall_ms}-{name}-{step}"

    async def checkout(self, cart: Cart, now_s: float) -> str | None:
        reservation_id, location = self._holds.pop(cart.cart_id)
        try:
            await self.client.commit(reservation_id, idempotency_key=self._key(cart.cart_id, "c"),
                                     order_ref=cart.cart_id, timeout=CALL_TIMEOUT_S)
        except AvailabilityError as error:  # the hold lapsed (a slow machine): no order
            self.errors[error.code.name] += 1
            return None
        return location

    async def abandon(self, cart: Cart, now_s: float) -> None:
        reservation_id, _ = self._holds.pop(cart.cart_id)
        if cart.release:
            try:
                await self.client.release(reservation_id,
                                          idempotency_key=self._key(cart.cart_id, "x"),
                                          reason="abandoned", timeout=CALL_TIMEOUT_S)
            except AvailabilityError as error:
                self.errors[error.code.name] += 1

    def market_take(self, market: str, sku: str, units: int) -> bool:
        self.markets[market].advance(time.monotonic())
        return self.markets[market].take(sku, units)

    async def market_forward(self, market: str, order_id: str, sku: str, units: int,
                             now_s: float) -> str | None:
        try:
            held = await self.client.reserve([(sku, "", units)],
                                             idempotency_key=self._key(order_id, "r"),
                                             channel=market, order_ref=order_id,
                                             timeout=CALL_TIMEOUT_S)
            honoured = held.status == pb.RESERVATION_STATUS_HELD
            if honoured:
                await self.client.commit(held.reservation_id,
                                         idempotency_key=self._key(order_id, "c"),
                                         order_ref=order_id, timeout=CALL_TIMEOUT_S)
        except AvailabilityError as error:
            self.errors[error.code.name] += 1
            self.markets[market].settle(units, None)
            return None
        self.markets[market].settle(units, honoured)
        return held.lines[0].location if honoured else None

    async def post(self, moves: Sequence[Move], now_s: float) -> None:
        if moves and moves[0].source == "erp":  # the ERP made these: its ledger has them
            for move in moves:
                row = self.erp.ledger.row(move.sku, move.location)
                counted = move.kind == pb.MOVEMENT_TYPE_CYCLE_COUNT
                self.erp.ledger.set_row(move.sku, move.location, move.units if counted else
                                        (row.on_hand if row else 0) + move.units)
        await self._apply(moves)

    async def _apply(self, moves: Sequence[Move]) -> None:
        for start in range(0, len(moves), MOVES_PER_CALL):
            chunk = [pb.Movement(event_id=self._key(m.event_id, "m"), source=m.source,
                                 type=int(m.kind), sku=m.sku, location=m.location,
                                 quantity=m.units, order_ref=m.order_ref,
                                 occurred_at_unix_ms=self._wall_ms(m.occurred_s))
                     for m in moves[start:start + MOVES_PER_CALL]]
            try:
                results = await self.client.apply_movements(chunk, timeout=CALL_TIMEOUT_S)
            except AvailabilityError as error:
                self.errors[error.code.name] += 1
                continue
            self.errors["movements_rejected"] += sum(
                result.code == pb.MOVEMENT_CODE_REJECTED for result in results)

    async def _read(self, items: list[tuple[str, str]], channel: str = ""):
        found = []
        for start in range(0, len(items), READ_ITEMS_MAX):
            found += await self.client.get_availability(items[start:start + READ_ITEMS_MAX],
                                                        channel=channel,
                                                        timeout=CALL_TIMEOUT_S)
        return found

    async def shown(self, channel: str) -> dict[str, int]:
        if channel in self.markets:
            return dict(self.markets[channel].shown)
        figures: dict[str, int] = defaultdict(int)
        skus = sorted({sku for sku, _ in self._rows})
        for item in await self._read([(sku, dc) for sku in skus for dc in DCS], channel):
            figures[item.sku] += max(0, item.available_to_sell)
        return dict(figures)

    async def on_hand(self) -> dict[tuple[str, str], int]:
        return {(item.sku, item.location): item.on_hand for item in await self._read(self._rows)}

    async def erp_view(self) -> dict[tuple[str, str], int]:
        return {(row.sku, row.location): row.on_hand for row in self.erp.ledger.rows(10**7)}

