"""What a retail day drives: the interface shared by the engine and the point-to-point
baseline, the stock movements the world posts, and sync-lag bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from engine.model import MovementType
from loadtest.retail_world import Cart

# Sync lags kept for percentiles at most; past it every other one is dropped (bounded).
LAGS_MAX = 200_000


class Move(NamedTuple):
    """A stock movement as a source posts it; times in simulated seconds."""

    kind: MovementType
    source: str
    sku: str
    location: str
    units: int
    occurred_s: float
    event_id: str
    order_ref: str = ""


class SyncLags:
    """Seconds from a change happening to the ERP holding it; still-pending ones apart."""

    def __init__(self) -> None:
        self.lags_s: list[float] = []
        self.pending = 0

    def record(self, lag_s: float, pending: bool = False) -> None:
        if len(self.lags_s) >= LAGS_MAX:
            del self.lags_s[::2]
        self.lags_s.append(max(0.0, lag_s))
        self.pending += pending

    def summary(self) -> dict:
        lags = sorted(self.lags_s)
        if not lags:
            return {"changes": 0, "pending_at_end": self.pending, "p50_s": 0.0, "p99_s": 0.0,
                    "max_s": 0.0}
        return {"changes": len(lags), "pending_at_end": self.pending,
                "p50_s": round(lags[len(lags) // 2], 1),
                "p99_s": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
                "max_s": round(lags[-1], 1)}


class RetailSystem(Protocol):
    """A system under test; `None` from a sale means refused, a location (or "" for any
    DC) means the order was taken and will ship from there."""

    name: str
    erp_calls: dict[str, int]
    lags: SyncLags

    async def start(self, catalogue: dict[tuple[str, str], int], now_s: float) -> None: ...

    async def tick(self, now_s: float) -> None: ...

    async def open_cart(self, cart: Cart, now_s: float) -> bool: ...

    async def checkout(self, cart: Cart, now_s: float) -> str | None: ...

    async def abandon(self, cart: Cart, now_s: float) -> None: ...

    def market_take(self, market: str, sku: str, units: int) -> bool: ...

    async def market_forward(self, market: str, order_id: str, sku: str, units: int,
                             now_s: float) -> str | None: ...

    async def post(self, moves: Sequence[Move], now_s: float) -> None: ...

    async def shown(self, channel: str) -> dict[str, int]: ...

    async def on_hand(self) -> dict[tuple[str, str], int]: ...

    async def erp_view(self) -> dict[tuple[str, str], int]: ...

    def finish(self, now_s: float) -> None: ...
