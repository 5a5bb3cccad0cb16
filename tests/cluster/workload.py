"""A small mixed load through a Router that remembers every acknowledged command, and the
audit that compares what it remembers with the state read back from the partitions."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from engine.model import (
    Commit,
    GetAvailability,
    ItemRef,
    Movement,
    MovementCode,
    MovementType,
    Outcome,
    Release,
    ReservationStatus,
    Reserve,
    ReserveLine,
)
from gateway.router import Router
from tests.cluster.harness import LOAD_TIMEOUT_S, until

LOC = "LOC-CLUSTER"
STOCK = 1_000_000
HOLD_TTL_S = 3_600
# A client retries an unacknowledged command with its key after this pause, for so long.
RETRY_PAUSE_S = 0.05
GIVE_UP_S = 90.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Ledger:
    """What the partitions acknowledged, per SKU, and how long acknowledgements took."""

    held: Counter = field(default_factory=Counter)
    committed: Counter = field(default_factory=Counter)
    released: Counter = field(default_factory=Counter)
    received: Counter = field(default_factory=Counter)
    acknowledged: int = 0
    failed_attempts: int = 0
    given_up: list[str] = field(default_factory=list)
    worst_delay_s: float = 0.0  # a command's first attempt to its acknowledgement
    failed_at: list[float] = field(default_factory=list)  # time.monotonic() of failures
    acknowledged_at: list[tuple[float, int]] = field(default_factory=list)  # (when, vp)

    def summary(self) -> dict:
        return {"acknowledged": self.acknowledged, "failed_attempts": self.failed_attempts,
                "given_up": len(self.given_up), "worst_delay_s": round(self.worst_delay_s, 3),
                "holds": sum(self.held.values()), "commits": sum(self.committed.values()),
                "releases": sum(self.released.values()),
                "receipts": sum(self.received.values())}


async def acknowledged(ledger: Ledger, send: Callable[[], Awaitable], vp: int = -1):
    """The answer of `send()`, retried with the same key until the engine acknowledges it
    (a client's retries); None, and noted as given up, past GIVE_UP_S."""
    first = time.monotonic()
    while True:
        try:
            answer = await send()
        except Exception as error:  # UNAVAILABLE, overload: not acknowledged, retry it
            ledger.failed_attempts += 1
            ledger.failed_at.append(time.monotonic())
            if time.monotonic() - first > GIVE_UP_S:
                ledger.given_up.append(repr(error))
                return None
            await asyncio.sleep(RETRY_PAUSE_S)  # a client's pacing, not a test's wait
            continue
        now = time.monotonic()
        ledger.acknowledged += 1
        ledger.worst_delay_s = max(ledger.worst_delay_s, now - first)
        ledger.acknowledged_at.append((now, vp))
        return answer


async def stock(router: Router, skus: list[str]) -> None:
    """STOCK units of every SKU on hand."""
    movements = [Movement(unique("stock"), "wms", MovementType.RECEIPT, sku, LOC, STOCK)
                 for sku in skus]
    answers = await router.apply_movements(movements)
    assert all(answer.code is MovementCode.APPLIED for answer in answers), answers


async def worker(router: Router, skus: list[str], ledger: Ledger, stop: asyncio.Event,
                 seed: int, vp_of: Callable[[str], int]) -> None:
    """Reserve one unit, then commit or release it, then receive one unit, until `stop`."""
    rng = random.Random(seed)
    while not stop.is_set():
        sku = rng.choice(skus)
        vp = vp_of(sku)
        key = unique("hold")
        reserve = Reserve(key, "", (ReserveLine(sku, LOC, 1),), ttl_seconds=HOLD_TTL_S)
        held = await acknowledged(ledger, lambda r=reserve: router.reserve(r), vp)
        if held is not None and held.status is ReservationStatus.HELD:
            ledger.held[sku] += 1
            if rng.random() < 0.5:
                commit = Commit(held.reservation_id, key + "-commit")
                done = await acknowledged(ledger, lambda c=commit: router.commit(c), vp)
                if done is not None and done.outcome is Outcome.OK:
                    ledger.committed[sku] += 1
            else:
                release = Release(held.reservation_id, key + "-release", "abandoned")
                done = await acknowledged(ledger, lambda r=release: router.release(r), vp)
                if done is not None and done.outcome is Outcome.OK:
                    ledger.released[sku] += 1
        receipt = Movement(unique("receipt"), "wms", MovementType.RECEIPT, sku, LOC, 1)
        done = await acknowledged(ledger, lambda m=receipt: router.apply_movements([m]), vp)
        # Its event id is new: DUPLICATE means an earlier attempt of it was applied (its
        # answer lost with the actor), and the retry was answered without applying it.
        if done is not None and done[0].code in (MovementCode.APPLIED, MovementCode.DUPLICATE):
            ledger.received[sku] += 1


@contextlib.asynccontextmanager
async def running_load(router: Router, skus: list[str], clients: int,
                       vp_of: Callable[[str], int]) -> AsyncIterator[Ledger]:
    """Stock every SKU, then `clients` workers through `router` until the block ends."""
    await stock(router, skus)
    ledger, stop = Ledger(), asyncio.Event()
    workers = [asyncio.create_task(worker(router, skus, ledger, stop, seed, vp_of))
               for seed in range(clients)]
    try:
        yield ledger
    finally:
        stop.set()
        await asyncio.gather(*workers)


async def until_acknowledged(ledger: Ledger, count: int, what: str) -> None:
    """Wait until `count` commands in all were acknowledged."""
    async def enough() -> bool:
        return ledger.acknowledged >= count
    await until(enough, LOAD_TIMEOUT_S, what)


async def audit(router: Router, skus: list[str], ledger: Ledger) -> list[str]:
    """Every difference between what was acknowledged and what the partitions hold."""
    answer = await router.get_availability(GetAvailability(tuple(ItemRef(sku, LOC)
                                                                 for sku in skus)))
    problems = []
    for sku, item in zip(skus, answer.items, strict=True):
        expected = (STOCK + ledger.received[sku],
                    ledger.held[sku] - ledger.committed[sku] - ledger.released[sku],
                    ledger.committed[sku])
        found = (item.on_hand, item.reserved, item.committed)
        if found != expected:
            problems.append(f"{sku}: (on_hand, reserved, committed) {found}, "
                            f"acknowledged {expected}")
    return problems
