"""`availability serve` on its embedded Redis, killed with -9 as a whole and started again."""

from __future__ import annotations

import os
import signal

import grpc

from engine.embedded_redis import start_embedded_redis
from tests.integration.serving import (
    HELD,
    availability,
    commit,
    receive,
    reserve,
    sku_on,
    stub_of,
)

PARTITIONS = 2


async def test_serve_killed_9_and_restarted_on_its_data_dir_comes_back_the_same(
        spawn, tmp_path):
    """kill -9 of the serve process tree, then a restart on the same --data-dir: the same
    figures on every partition, and a retried key returns its original reservation id."""
    data_dir = str(tmp_path / "data")
    skus = [sku_on(p, PARTITIONS, "restart") for p in range(PARTITIONS)]
    first = spawn(PARTITIONS, args=("--data-dir", data_dir))
    try:
        async with grpc.aio.insecure_channel(first.target) as channel:
            stub = stub_of(channel)
            for sku in skus:
                await receive(stub, sku, 10)
            held = await reserve(stub, "cart-1", (skus[0], 3))
            assert held.status == HELD
            sold = await reserve(stub, "cart-2", (skus[1], 4))
            await commit(stub, sold.reservation_id)
            before = await availability(stub, *skus)

        os.killpg(first.pid, signal.SIGKILL)
        first.process.wait()
        second = spawn(PARTITIONS, namespace=first.namespace, args=("--data-dir", data_dir))
        async with grpc.aio.insecure_channel(second.target) as channel:
            stub = stub_of(channel)
            assert await availability(stub, *skus) == before
            again = await reserve(stub, "cart-1", (skus[0], 3))
            assert (again.status, again.reservation_id) == (HELD, held.reservation_id)
            assert [item.reserved for item in await availability(stub, *skus)] == [3, 0]
    finally:
        start_embedded_redis(data_dir).stop()  # the one the killed serve left running
