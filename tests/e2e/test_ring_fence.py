"""A real `availability serve` with a ring-fenced marketplace: its publisher child fences what
it posts, the storefront cannot reserve those units, and FenceChannel is permission-checked."""

from __future__ import annotations

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError
from gateway.tokens import new_token, toml_table
from loadtest.marketplace_sim import Marketplace, start_receiver
from tests.e2e.test_channel_publish import until
from tests.integration.serving import RPC_TIMEOUT_S, unique


async def test_ring_fenced_marketplace_keeps_what_it_was_shown(spawn, tmp_path):
    """10 units shown to the marketplace are fenced: web is refused them, the marketplace
    reserves them; FenceChannel answers its own channel's token, not another's."""
    market = Marketplace(feed_lag_s=0.0)
    runner, port = await start_receiver(market)
    channels = tmp_path / "channels.toml"
    channels.write_text(f"""
[[channels]]
name = "web"
locations = ["dc-*"]

[[channels]]
name = "market"
locations = ["dc-*"]
publish = "webhook"
webhook_url = "http://127.0.0.1:{port}/feed"
cadence_s = 0.2
rate_limit_per_s = 50
ring_fence = true
fence_hold_s = 60
""")
    tokens = {role: new_token() for role in ("admin", "market", "web", "checkout")}
    path = tmp_path / "tokens.toml"
    path.write_text("\n\n".join([
        toml_table("ops", "admin", tokens["admin"]),
        toml_table("market-feed", "channel", tokens["market"], channel="market"),
        toml_table("web-feed", "channel", tokens["web"], channel="web"),
        toml_table("shop", "checkout", tokens["checkout"])]))
    # The publisher child inherits the token of the one channel it publishes.
    served = spawn(2, args=("--channels", str(channels), "--auth-tokens", str(path)),
                   env={"AVAILABILITY_TOKEN": tokens["market"]})
    sku = unique("fence")
    try:
        async with (AvailabilityClient(served.target, token=tokens["admin"]) as admin,
                    AvailabilityClient(served.target, token=tokens["checkout"]) as checkout,
                    AvailabilityClient(served.target, token=tokens["market"]) as feed,
                    AvailabilityClient(served.target, token=tokens["web"]) as web_feed):
            await admin.apply_movements([pb.Movement(
                event_id=unique("in"), source="wms", type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku,
                location="dc-1", quantity=10)], timeout=RPC_TIMEOUT_S)

            def shown() -> int | None:
                market.advance(float("inf"))
                return market.shown.get(sku)

            await until(lambda: shown() == 10, "the feed of 10 on the webhook")
            (web_view,) = await web_feed.get_availability([(sku, "dc-1")], channel="web",
                                                          timeout=RPC_TIMEOUT_S)
            assert web_view.available_to_sell == 0  # fenced before it was posted
            refused = await checkout.reserve([(sku, "", 1)], idempotency_key=unique("w"),
                                             channel="web", timeout=RPC_TIMEOUT_S)
            assert refused.status == pb.RESERVATION_STATUS_REJECTED
            held = await checkout.reserve([(sku, "", 4)], idempotency_key=unique("m"),
                                          channel="market", timeout=RPC_TIMEOUT_S)
            assert held.status == pb.RESERVATION_STATUS_HELD

            settled = await feed.fence_channel("market", pb.FENCE_ACTION_SETTLE, 1,
                                               timeout=RPC_TIMEOUT_S)
            assert settled.skipped  # the publisher's own later publishes stay covered
            for client, channel in ((feed, "web"), (checkout, "market"), (web_feed, "market")):
                with pytest.raises(AvailabilityError) as denied:
                    await client.fence_channel(channel, pb.FENCE_ACTION_SETTLE, 1,
                                               timeout=RPC_TIMEOUT_S)
                assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(AvailabilityError) as invalid:
                await admin.fence_channel("web", pb.FENCE_ACTION_SHOWN, 1, [(sku, "dc-1", 1)],
                                          timeout=RPC_TIMEOUT_S)
            assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "ring-fenced" in invalid.value.details
    finally:
        await runner.cleanup()
