"""A cart that spans partitions, retried under one idempotency key, is one reservation even
when its attempts reach the partitions through different gateways in different orders."""

from __future__ import annotations

import asyncio

from engine.config import GatewayConfig
from engine.model import ReservationStatus, Reserve, ReserveLine
from gateway.partitions import RayPartitions
from gateway.router import Router
from tests.integration.serving import (
    HELD,
    LOC,
    availability,
    commit,
    receive,
    reserve,
    reserved_of,
    sku_on,
    stub_of,
    unique,
    wait_until,
)


class GatedPartitions(RayPartitions):
    """Ray partitions whose calls to one partition wait until the test opens its gate."""

    def __init__(self, handles, gated: int) -> None:
        super().__init__(handles)
        self.gated = gated
        self.gate = asyncio.Event()

    async def apply(self, partition, commands):
        if partition == self.gated:
            await self.gate.wait()
        return await super().apply(partition, commands)


async def test_commit_cart_retried_through_two_gateways_commits_every_part(
        actors, gateway, channel_to):
    """Two attempts of one cart whose parts reach the partitions in opposite orders (one
    gateway first on the left partition, the other first on the right) both answer one id,
    and committing it commits every part."""
    _, handles = actors(2)
    stub = stub_of(channel_to(await gateway(handles)))
    left, right = sku_on(0, 2, "left"), sku_on(1, 2, "right")
    await receive(stub, left, 10)
    await receive(stub, right, 10)
    key = unique("cart")
    cart = Reserve(key, "", (ReserveLine(left, LOC, 2), ReserveLine(right, LOC, 3)))
    # The other gateway's attempt: its right part lands, its left part is held up on the way.
    other = GatedPartitions(handles, gated=0)
    other_attempt = asyncio.create_task(Router(other, GatewayConfig()).reserve(cart))
    await wait_until(lambda: _reserved_are(stub, [left, right], [0, 3]), 30,
                     "the other attempt holds its right part")

    answer = await reserve(stub, key, (left, 2), (right, 3))
    other.gate.set()
    other_answer = await asyncio.wait_for(other_attempt, 30)
    assert answer.status == HELD and other_answer.status is ReservationStatus.HELD
    assert other_answer.reservation_id == answer.reservation_id
    await commit(stub, answer.reservation_id)
    items = await availability(stub, left, right)
    assert [(item.reserved, item.committed) for item in items] == [(0, 2), (0, 3)]


async def _reserved_are(stub, skus: list[str], reserved: list[int]) -> bool:
    return await reserved_of(stub, *skus) == reserved
