"""A real `availability serve --channels FILE` with a webhook channel: its publisher child
pushes a change to the webhook, records what was acknowledged, and publishes its status."""

from __future__ import annotations

import asyncio

import pytest
import redis
from inventory.v1 import availability_pb2 as pb

from engine.publish_store import published_key, read_status
from gateway.client import AvailabilityClient
from loadtest.marketplace_sim import Marketplace, start_receiver
from tests.integration.conftest import REDIS_URL

DEADLINE_S = 60.0
SKU = "pub-sku-1"


async def until(condition, what: str, deadline_s: float = DEADLINE_S) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not condition():
        if loop.time() > end:
            pytest.fail(f"{what} not within {deadline_s}s")
        await asyncio.sleep(0.05)


async def test_publish_a_change_reaches_the_webhook_and_is_recorded(spawn, tmp_path):
    """A receipt, then a channel reserve, each reach the webhook as the channel's network
    figure (less its buffer); the acknowledged quantity lands in Redis with the status."""
    market = Marketplace(feed_lag_s=0.0)
    runner, port = await start_receiver(market)
    channels = tmp_path / "channels.toml"
    channels.write_text(f"""
[[channels]]
name = "market"
locations = ["dc-*"]
buffer = 1
publish = "webhook"
webhook_url = "http://127.0.0.1:{port}/feed"
cadence_s = 0.2
rate_limit_per_s = 50
""")
    served = spawn(2, args=("--channels", str(channels)))
    store = redis.Redis.from_url(REDIS_URL)
    try:
        async with AvailabilityClient(served.target) as client:
            await client.apply_movements([pb.Movement(
                event_id="pub-in-1", source="wms", type=pb.MOVEMENT_TYPE_RECEIPT, sku=SKU,
                location="dc-1", quantity=10)], timeout=30)

            def shown() -> int | None:
                market.advance(float("inf"))
                return market.shown.get(SKU)

            await until(lambda: shown() == 9, "the receipt on the webhook")
            held = await client.reserve([(SKU, "", 4)], idempotency_key="pub-r-1",
                                        channel="market", timeout=30)
            assert held.status == pb.RESERVATION_STATUS_HELD
            await until(lambda: shown() == 5, "the reserve on the webhook")
        key = published_key(served.namespace, "market")
        await until(lambda: store.hget(key, f"{SKU}\t") == b"5", "the acknowledged quantity")
        assert store.hget(key, f"{SKU}\tdc-1") == b"5"
        await until(lambda: read_status(store, served.namespace).get("market", {}).get("ready"),
                    "the channel's status")
        status = read_status(store, served.namespace)["market"]
        assert status["requests"]["ok"] >= 2 and status["publish_lag_s"] is not None
        assert set(status["network"]) == {"diverged_units", "exposed_items", "units_at_risk"}
        assert market.stats.feeds >= 2
    finally:
        store.close()
        await runner.cleanup()
