"""A gateway killed between the two phases of a cart leaves no hold behind once the cart's
tentative TTL has passed."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc

from engine.config import GatewayConfig
from tests.integration.serving import (
    availability,
    receive,
    refusal_of,
    reserve,
    reserved_of,
    sku_on,
    stub_of,
    unique,
    wait_until,
)

SERVE_PARTITIONS = 2
# Tentative holds lapse after the cart's TTL, swept within 1 s (DESIGN); 3 s of slack.
LAPSED_WITHIN_S = GatewayConfig.cart_tentative_ttl_s + 1 + 3
PAUSE_BETWEEN_PHASES = {"AVAILABILITY_FAULT_CART_CONFIRM_DELAY_S": "60"}


async def test_reserve_cart_whose_gateway_dies_between_phases_leaks_no_hold(serve, stub, spawn):
    """Tentative holds of a cart whose gateway is killed -9 between phase 1 and phase 2 are
    gone from every partition within the tentative TTL plus a sweep, and a retry of that
    cart holds nothing."""
    left, right = sku_on(0, 2, "crash"), sku_on(1, 2, "crash")
    await receive(stub, left, 10)
    await receive(stub, right, 10)
    before = await availability(stub, left, right)
    doomed = spawn(serve.partitions, command="gateway", namespace=serve.namespace,
                   env=PAUSE_BETWEEN_PHASES)
    key = unique("doomed-cart")
    async with grpc.aio.insecure_channel(doomed.target) as channel:
        cart = asyncio.create_task(reserve(stub_of(channel), key, (left, 2), (right, 3)))
        await wait_until(lambda: _reserved_are(stub, [left, right], [2, 3]), 60,
                         "phase 1 holds both parts, seen through the main serve")
        seen_at = time.monotonic()
        os.kill(doomed.pid, signal.SIGKILL)
        refusal = await asyncio.wait_for(refusal_of(cart), 30)
        assert refusal.code() is grpc.StatusCode.UNAVAILABLE, refusal
    remaining_s = LAPSED_WITHIN_S - (time.monotonic() - seen_at)
    await wait_until(lambda: _reserved_are(stub, [left, right], [0, 0]), remaining_s,
                     "the dead gateway's tentative holds lapsed")
    assert await availability(stub, left, right) == before

    # The caller retries its cart on a live gateway: its parts are remembered as held, but
    # they lapsed, so the cart is refused as a whole rather than half held.
    refusal = await refusal_of(reserve(stub, key, (left, 2), (right, 3)))
    assert refusal.code() is grpc.StatusCode.ABORTED, refusal
    assert await availability(stub, left, right) == before


async def _reserved_are(stub, skus: list[str], reserved: list[int]) -> bool:
    return await reserved_of(stub, *skus) == reserved
