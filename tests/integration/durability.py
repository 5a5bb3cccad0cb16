"""A load of single-unit holds through the batching client that survives faults, and its audit."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import grpc
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError
from tests.integration.serving import LOC, unique

HELD = pb.RESERVATION_STATUS_HELD


@dataclass
class HoldLoad:
    """Callers reserving one unit each of `skus`, each with a fresh key, until stopped."""

    client: AvailabilityClient
    skus: list[str]
    callers: int = 32
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (sku, id)
    unanswered: dict[str, str] = field(default_factory=dict)  # key -> sku, outcome unknown
    refusals: dict[str, int] = field(default_factory=dict)  # status name -> count
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await asyncio.gather(*(self._caller(n) for n in range(self.callers)))

    def stop(self) -> None:
        self._stop.set()

    async def _caller(self, n: int) -> None:
        while not self._stop.is_set():
            sku, key = self.skus[n % len(self.skus)], unique(f"hold-{n}")
            try:
                answer = await self.client.reserve([(sku, LOC, 1)], idempotency_key=key,
                                                   timeout=10)
            except AvailabilityError as error:
                self.unanswered[key] = sku
                self.refusals[error.code.name] = self.refusals.get(error.code.name, 0) + 1
                await asyncio.sleep(0.01)  # a caller backs off a little on refusals
                continue
            assert answer.status == HELD, answer
            self.acknowledged[key] = (sku, answer.reservation_id)

    async def wait_for(self, acknowledged: int, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.acknowledged) < acknowledged:
            assert time.monotonic() < deadline, f"only {len(self.acknowledged)} holds in time"
            await asyncio.sleep(0.02)


async def audit(load: HoldLoad, stock_per_sku: int) -> None:
    """Every acknowledged hold is there once, and every unanswered one at most once.

    Each key is reserved again: an acknowledged key must answer its original id, and an
    unanswered one either its first (applied) hold or a new one. Then each SKU's reserved
    units must equal the keys holding it: nothing lost, nothing doubled.
    """
    client = load.client
    for key, (sku, reservation_id) in load.acknowledged.items():
        again = await _reserve_until_answered(client, sku, key)
        assert again.reservation_id == reservation_id, key
    holders = {sku: 0 for sku in load.skus}
    for sku, _ in load.acknowledged.values():
        holders[sku] += 1
    for key, sku in load.unanswered.items():
        again = await _reserve_until_answered(client, sku, key)
        if again.status == HELD:
            holders[sku] += 1
    rows = await client.get_availability([(sku, LOC) for sku in load.skus])
    assert {row.sku: row.reserved for row in rows} == holders
    assert all(row.on_hand == stock_per_sku for row in rows)


async def _reserve_until_answered(client: AvailabilityClient, sku: str, key: str):
    deadline = time.monotonic() + 60
    while True:
        try:
            return await client.reserve([(sku, LOC, 1)], idempotency_key=key, timeout=10)
        except AvailabilityError as error:
            if error.code is not grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
