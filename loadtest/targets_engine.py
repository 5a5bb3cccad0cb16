"""The engine as a flash-sale target, through gateway/client.py's AvailabilityClient."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence

from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError, StatusCode
from loadtest.targets import READ_CHUNK_ITEMS, HoldAnswer, Line, TransientError

LOCATION = "LOC-FLASH"
# Clients (connections) the load is spread over; each coalesces its own calls.
CLIENTS = 4
MOVEMENTS_PER_REQUEST_MAX = 1_000
# Answers that say nothing about whether the call was applied: the caller retries its key.
_TRANSIENT = frozenset({StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED,
                        StatusCode.RESOURCE_EXHAUSTED, StatusCode.CANCELLED,
                        StatusCode.UNKNOWN, StatusCode.INTERNAL})
# Refusals of a Commit or Release that are answers: the hold lapsed, was released, or
# (ABORTED) a cart whose parts were rolled back.
_REFUSED = frozenset({StatusCode.FAILED_PRECONDITION, StatusCode.NOT_FOUND, StatusCode.ABORTED})


class EngineTarget:
    """Reserve, Commit and Release through one AvailabilityClient (coalesced Batch RPCs)."""

    name = "engine"

    def __init__(self, address: str, run_id: str, clients: int = CLIENTS) -> None:
        self.address = address
        self._run_id = run_id
        self._client_count = clients
        self._clients: list[AvailabilityClient] = []
        self._turn = itertools.count()

    @property
    def _client(self) -> AvailabilityClient:
        """The next client, round robin: a checkout fleet has many connections."""
        return self._clients[next(self._turn) % len(self._clients)]

    async def setup(self, skus: Sequence[str], stock: int) -> None:
        # Made here, inside the run's event loop: a grpc.aio channel belongs to one loop.
        # A local subchannel pool gives each client a connection of its own, so with
        # several gateway processes the kernel spreads them (SO_REUSEPORT).
        self._clients = [AvailabilityClient(self.address, channel_options=(
            ("grpc.use_local_subchannel_pool", 1),)) for _ in range(self._client_count)]
        now_ms = int(time.time() * 1000)
        movements = [pb.Movement(event_id=f"flash-{self._run_id}-receipt-{sku}",
                                 source="loadtest", type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku,
                                 location=LOCATION, quantity=stock, occurred_at_unix_ms=now_ms)
                     for sku in skus]
        for start in range(0, len(movements), MOVEMENTS_PER_REQUEST_MAX):
            results = await self._client.apply_movements(
                movements[start:start + MOVEMENTS_PER_REQUEST_MAX], timeout=60)
            refused = [r for r in results if r.code != pb.MOVEMENT_CODE_APPLIED]
            if refused:
                raise RuntimeError(f"engine: {len(refused)} receipts not applied: {refused[0]}")

    async def reserve(self, key: str, lines: Sequence[Line], ttl_s: int,
                      timeout_s: float) -> HoldAnswer:
        try:
            answer = await self._client.reserve(
                [(sku, LOCATION, units) for sku, units in lines], idempotency_key=key,
                ttl_seconds=ttl_s, timeout=timeout_s)
        except AvailabilityError as error:
            if error.code in _TRANSIENT:
                raise TransientError(str(error)) from error
            if error.code == StatusCode.ABORTED:  # a cart rolled back: nothing is held
                return HoldAnswer(False)
            raise
        return HoldAnswer(answer.status == pb.RESERVATION_STATUS_HELD, answer.reservation_id)

    async def commit(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._settle(self._client.commit, reservation_id, key, timeout_s,
                                  pb.RESERVATION_STATE_COMMITTED)

    async def release(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._settle(self._client.release, reservation_id, key, timeout_s,
                                  pb.RESERVATION_STATE_RELEASED)

    async def _settle(self, call, reservation_id: str, key: str, timeout_s: float,
                      state: int) -> bool:
        try:
            answer = await call(reservation_id, idempotency_key=key, timeout=timeout_s)
        except AvailabilityError as error:
            if error.code in _TRANSIENT:
                raise TransientError(str(error)) from error
            if error.code in _REFUSED:
                return False
            raise
        return answer.state == state

    async def read(self, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
        read = {}
        for start in range(0, len(skus), READ_CHUNK_ITEMS):
            items = await self._client.get_availability(
                [(sku, LOCATION) for sku in skus[start:start + READ_CHUNK_ITEMS]], timeout=30)
            read.update({item.sku: (item.reserved, item.committed) for item in items})
        return read

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
