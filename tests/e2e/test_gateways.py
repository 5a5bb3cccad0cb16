"""`serve --gateways 2`: two gateway processes share one port and one set of partitions."""

from __future__ import annotations

import subprocess

import grpc

from tests.e2e.conftest import AVAILABILITY
from tests.integration.serving import (
    outcomes,
    quantities,
    receive,
    reserve,
    settle_all,
    stub_of,
    unique,
)

SERVE_PARTITIONS = 4
SERVE_ARGS = ("--gateways", "2")
CHANNELS = 20
# Each channel opens its own connection, which the kernel hands to either gateway process.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


async def test_reserve_through_two_gateways_sells_every_unit_exactly_once(serve):
    """400 single-unit Reserves of a 300-unit SKU spread over 20 connections, and so over
    both gateways, hold exactly 300 and reject the rest."""
    channels = [grpc.aio.insecure_channel(serve.target, options=OWN_CONNECTION)
                for _ in range(CHANNELS)]
    try:
        stubs = [stub_of(channel) for channel in channels]
        sku = unique("shared")
        await receive(stubs[0], sku, 300)
        answers = await settle_all(reserve(stubs[i % CHANNELS], unique("cart"), (sku, 1))
                                   for i in range(400))
        assert outcomes(answers) == {"HELD": 300, "REJECTED": 100}
        for stub in stubs:  # every connection, whichever gateway it reached, reads the same
            item = await quantities(stub, sku)
            assert (item.on_hand, item.reserved, item.available_to_sell) == (300, 300, 0)
    finally:
        for channel in channels:
            await channel.close()


async def test_reserve_retried_through_two_gateways_holds_once(serve):
    """One idempotency key retried concurrently over 20 connections holds once, under one id."""
    channels = [grpc.aio.insecure_channel(serve.target, options=OWN_CONNECTION)
                for _ in range(CHANNELS)]
    try:
        sku, key = unique("retried"), unique("cart")
        await receive(stub_of(channels[0]), sku, 10)
        answers = await settle_all(reserve(stub_of(channel), key, (sku, 4))
                                   for channel in channels)
        assert outcomes(answers) == {"HELD": CHANNELS}
        assert len({answer.reservation_id for answer in answers}) == 1
        assert (await quantities(stub_of(channels[-1]), sku)).reserved == 4
    finally:
        for channel in channels:
            await channel.close()


def test_serve_refuses_a_port_another_engine_listens_on(serve, ray_address):
    """A second `serve` on a port already served exits with a clear error, sharing nothing."""
    port = serve.target.rsplit(":", 1)[1]
    second = subprocess.run([*AVAILABILITY, "serve", "--ray-address", ray_address,
                             "--ray-namespace", unique("other"), "--port", port],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in second.stderr
