"""One retail day, step by step: the seeded world (loadtest/retail_world.py) drives a
system (the engine or the point-to-point baseline), while the physical truth
(loadtest/retail_truth.py) judges every order and samples divergence over time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from engine.model import MovementType as MT
from loadtest.retail_system import Move, RetailSystem
from loadtest.retail_truth import Truth
from loadtest.retail_world import DCS, HOUR_S, MARKETS, WEB, RetailConfig, World

CHANNELS = (WEB, *MARKETS)
BACKORDER_RETRY_S = 3_600.0  # an order the DC cannot pick waits this long to try again


@dataclass
class DayState:
    """What is in flight between steps: carts, picks, returns and stores' unposted sales."""

    carts: list = field(default_factory=list)  # heap: (checkout_s, n, cart)
    picks: list = field(default_factory=list)  # heap: (ready_s, n, order_id, sku, units, loc)
    returns: list = field(default_factory=list)  # heap: (due_s, n, kind, sku, loc, units, id)
    outbox: dict[str, list[Move]] = field(default_factory=lambda: defaultdict(list))
    offline_until: dict[str, float] = field(default_factory=dict)
    counter: itertools.count = field(default_factory=itertools.count)
    stores: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[dict] = field(default_factory=list)


class RetailDay:
    """Plays one seeded day against one system."""

    def __init__(self, config: RetailConfig, system: RetailSystem) -> None:
        self.config, self.system = config, system
        self.world, self.truth, self.state = World(config), Truth(), DayState()
        # Picks and returns depend on what was sold, so they draw from their own stream.
        self._draw = random.Random(config.seed + 2)

    async def run(self, pace_per_s: float | None = None,
                  on_step: Callable[[float, RetailDay], None] | None = None) -> dict:
        """The whole day; with `pace_per_s`, simulated seconds per wall second; `on_step`
        is told of every step done."""
        config, started_s = self.config, time.monotonic()
        self.catalogue = self.world.catalogue()
        for (sku, location), units in self.catalogue.items():
            self.truth.receive(sku, location, units)
        await self.system.start(self.catalogue, 0.0)
        steps = round(config.hours_simulated * HOUR_S / config.tick_s)
        for step in range(1, steps + 1):
            now_s = step * config.tick_s
            await self.step(now_s)
            if on_step:
                on_step(now_s, self)
            if pace_per_s:
                await asyncio.sleep(max(0.0, started_s + now_s / pace_per_s - time.monotonic()))
        end_s = steps * config.tick_s
        self.system.finish(end_s)
        await self._sample(end_s)
        return self.result(time.monotonic() - started_s)

    def _every(self, now_s: float, period_s: float) -> bool:
        return now_s % period_s < self.config.tick_s

    async def step(self, now_s: float) -> None:
        system, truth, state = self.system, self.truth, self.state
        await system.tick(now_s)
        demand = self.world.step(now_s)
        erp_moves = []
        for n, (sku, location, units) in enumerate(demand.receipts):
            truth.receive(sku, location, units)
            erp_moves.append(Move(MT.RECEIPT, "erp", sku, location, units, now_s,
                                  f"erp-po-{now_s:.0f}-{n}"))
        for n, (sku, location) in enumerate(demand.counts):
            erp_moves.append(Move(MT.CYCLE_COUNT, "erp", sku, location,
                                  truth.on_hand[sku, location], now_s,
                                  f"erp-count-{now_s:.0f}-{n}"))
        if erp_moves:
            await system.post(erp_moves, now_s)
        self._stores(demand, now_s)
        if self._every(now_s, self.config.pos_batch_min * 60):
            await self._post_tills(now_s)
        for cart in demand.carts:
            if await system.open_cart(cart, now_s):
                heapq.heappush(state.carts, (cart.checkout_s, next(state.counter), cart))
            else:
                truth.refuse(WEB, cart.sku, cart.units)
        while state.carts and state.carts[0][0] <= now_s:
            cart = heapq.heappop(state.carts)[2]
            if cart.abandon:
                await system.abandon(cart, now_s)
                continue
            location = await system.checkout(cart, now_s)
            if location is None:
                truth.refuse(WEB, cart.sku, cart.units)
            else:
                truth.accept(WEB, cart.sku, cart.units)
                self._pick_later(now_s, cart.cart_id, cart.sku, cart.units, location)
        for market, order_id, sku, units in demand.market_orders:
            if not system.market_take(market, sku, units):
                truth.refuse(market, sku, units)
                continue
            oversold = truth.accept(market, sku, units)
            location = await system.market_forward(market, order_id, sku, units, now_s)
            if location is None:
                truth.cancel(market, sku, units, oversold)
            else:
                self._pick_later(now_s, order_id, sku, units, location)
        await self._ship(now_s)
        await self._returns(now_s)
        if self._every(now_s, self.config.sample_every_s):
            await self._sample(now_s)

    def _stores(self, demand, now_s: float) -> None:
        """Till sales happen on the shelf now and wait in the store's outbox to be posted."""
        truth, state = self.truth, self.state
        for store, back_s in demand.offline:
            state.offline_until[store] = back_s
            state.stores["outages"] += 1
        for sale in demand.sales:
            if truth.sellable(sale.sku, sale.store) < sale.units:
                state.stores["sales_missed_empty_shelf"] += 1
                continue
            truth.remove(sale.sku, sale.store, sale.units)
            state.stores["units_sold"] += sale.units
            state.outbox[sale.store].append(Move(
                MT.SALE, "pos", sale.sku, sale.store, sale.units, now_s,
                f"pos-{sale.store}-{next(state.counter)}"))
        for store, sku, units in demand.shrink:
            if truth.sellable(sku, store) >= units:
                truth.remove(sku, store, units)
                state.stores["units_shrunk_unseen"] += units

    async def _post_tills(self, now_s: float) -> None:
        state = self.state
        for store, lines in list(state.outbox.items()):
            if lines and state.offline_until.get(store, -1.0) <= now_s:
                late = [move for move in lines if now_s - move.occurred_s > HOUR_S]
                state.stores["sales_posted_over_1h_late"] += len(late)
                await self.system.post(lines, now_s)
                state.outbox[store] = []

    def _pick_later(self, now_s: float, order_id: str, sku: str, units: int,
                    location: str) -> None:
        ready_s = now_s + self._draw.uniform(*self.config.pick_delay_min) * 60
        heapq.heappush(self.state.picks, (ready_s, next(self.state.counter), order_id, sku,
                                          units, location))

    async def _ship(self, now_s: float) -> None:
        """The WMS picks due orders and confirms each SHIPMENT; an order whose DC has too
        few units on the shelf waits (a backorder)."""
        truth, state = self.truth, self.state
        while state.picks and state.picks[0][0] <= now_s:
            _, n, order_id, sku, units, location = heapq.heappop(state.picks)
            location = location or max(DCS, key=lambda dc: truth.sellable(sku, dc))
            if truth.sellable(sku, location) < units:
                state.stores["wms_backorder_retries"] += 1
                heapq.heappush(state.picks, (now_s + BACKORDER_RETRY_S, n, order_id, sku,
                                             units, location if location else ""))
                continue
            truth.ship(sku, location, units)
            await self.system.post([Move(MT.SHIPMENT, "wms", sku, location, units, now_s,
                                         f"wms-ship-{order_id}", order_id)], now_s)
            state.stores["wms_shipments"] += 1
            if self._draw.random() < self.config.return_rate:
                due_s = now_s + self._draw.uniform(*self.config.return_delay_h) * HOUR_S
                heapq.heappush(state.returns, (due_s, n, "received", sku, location, units,
                                               order_id))

    async def _returns(self, now_s: float) -> None:
        """Returns land in quality control; inspection restocks or scraps them later."""
        truth, state, config = self.truth, self.state, self.config
        while state.returns and state.returns[0][0] <= now_s:
            _, n, kind, sku, location, units, order_id = heapq.heappop(state.returns)
            if kind == "received":
                truth.return_received(sku, location, units)
                move_kind = MT.RETURN_RECEIVED
                verdict = "restocked" if self._draw.random() < config.restock_share else "scrapped"
                due_s = now_s + self._draw.uniform(*config.inspect_delay_h) * HOUR_S
                heapq.heappush(state.returns, (due_s, n, verdict, sku, location, units,
                                               order_id))
            elif kind == "restocked":
                truth.restock(sku, location, units)
                move_kind = MT.RETURN_RESTOCKED
            else:
                truth.scrap(sku, location, units)
                move_kind = MT.RETURN_SCRAPPED
            state.stores[f"returns_{kind}"] += 1
            await self.system.post([Move(move_kind, "returns", sku, location, units, now_s,
                                         f"rma-{order_id}-{kind}", order_id)], now_s)

    async def _sample(self, now_s: float) -> None:
        """Divergence now: each channel's shown figure against the free units, and the
        system's and the ERP's on-hand against the shelves."""
        truth, system = self.truth, self.system
        free = {sku: max(0, truth.free_units(sku)) for sku in self.world.skus}
        sample: dict = {"t_h": round(now_s / HOUR_S, 3)}
        for channel in CHANNELS:
            shown = await system.shown(channel)
            sample[channel] = sum(abs(shown.get(sku, 0) - units) for sku, units in free.items())
            sample[f"{channel}_exposure"] = sum(max(0, shown.get(sku, 0) - units)
                                                for sku, units in free.items())
        for name, view in (("system_vs_shelves", await system.on_hand()),
                           ("erp_vs_shelves", await system.erp_view())):
            sample[name] = sum(abs(view.get(key, 0) - truth.on_hand[key])
                               for key in self.catalogue)
        self.state.samples.append(sample)

    def result(self, run_s: float) -> dict:
        tallies = {channel: self.truth.tallies[channel].to_json() for channel in CHANNELS}
        calls = dict(self.system.erp_calls)
        return {
            "channels": tallies,
            "oversold_units": sum(t["oversold_units"] for t in tallies.values()),
            "oversold_orders": sum(t["oversold_orders"] for t in tallies.values()),
            "undersold_units": sum(t["undersold_units"] for t in tallies.values()),
            "cancelled_units": sum(t["cancelled_units"] for t in tallies.values()),
            # Oversold units someone is still owed: the order was honoured behind the channel.
            "oversold_honoured_units": sum(t["oversold_units"] - t["oversold_cancelled_units"]
                                           for t in tallies.values()),
            "erp_calls": calls, "erp_calls_total": sum(calls.values()),
            "sync_lag": self.system.lags.summary(),
            "divergence": self.state.samples,
            "world": dict(self.state.stores, orders_awaiting_pick_at_end=len(self.state.picks)),
            "rejected_movements": list(getattr(self.system, "rejected_movements", [])),
            "run_s": round(run_s, 2),
        }


def workload(config: RetailConfig) -> dict:
    return asdict(config)
